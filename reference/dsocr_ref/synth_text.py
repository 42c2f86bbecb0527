"""The text of synthetic OCR samples (synth.py's levels): words from the word list, generated tokens
(numbers, prices, percentages, dates, times, codes) and punctuation, composed into a few words, a
line, a long line, a paragraph or a two-column table. Deterministic in the random.Random passed."""

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
TABLE_HEADS = [("Item", "Price", "price"), ("Name", "Date", "date"), ("Code", "Qty", "int"),
               ("Product", "Amount", "price"), ("Key", "Value", "any"), ("City", "Time", "time"),
               ("Account", "Rate", "percent"), ("Task", "Due", "date"), ("Part", "ID", "code"),
               ("Region", "Total", "number")]


def _number(rng):
    r = rng.random()
    if r < 0.6:
        return str(rng.randint(0, 999) if r < 0.4 else rng.randint(1000, 99999))
    return "{:,}".format(rng.randint(1000, 9999999)) if r < 0.75 else "%.*f" % (rng.randint(1, 3),
                                                                                  rng.uniform(0, 1000))


def _price(rng):
    v = rng.choice([rng.uniform(0.1, 20), rng.uniform(1, 500), rng.uniform(100, 9999)])
    r = rng.random()
    if r < 0.55:
        return "${:,.2f}".format(v)
    if r < 0.8:
        return "€" + ("%.2f" % v).replace(".", ",")
    return ("%.2f" % v).replace(".", ",") + " €" if r < 0.9 else "$%d" % round(v)


def _percent(rng):
    return ("%d%%" % rng.randint(0, 100)) if rng.random() < 0.6 else "%.1f%%" % rng.uniform(-20, 100)


def _date(rng):
    y, m, d = rng.randint(1950, 2030), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(["%04d-%02d-%02d" % (y, m, d), "%02d/%02d/%04d" % (d, m, y),
                       "%s %d, %d" % (MONTHS[m - 1], d, y), "%d %s %d" % (d, MONTHS[m - 1][:3], y),
                       "%d/%d/%02d" % (m, d, y % 100)])


def _time(rng):
    h, m = rng.randint(0, 23), rng.randint(0, 59)
    if rng.random() < 0.5:
        return "%02d:%02d" % (h, m) if rng.random() < 0.8 else "%02d:%02d:%02d" % (h, m, rng.randint(0, 59))
    return "%d:%02d %s" % (h % 12 or 12, m, rng.choice(["am", "pm", "AM", "PM"]))


def _code(rng):
    up = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    a, b = rng.choice(up), rng.choice(up)
    return rng.choice(["#%s%d" % (a, rng.randint(1, 99)), "ID-%d" % rng.randint(100, 9999),
                       "%s%s-%03d" % (a, b, rng.randint(0, 999)), "No. %d" % rng.randint(1, 500),
                       "REF-%d-%02d" % (rng.randint(2000, 2030), rng.randint(1, 99)),
                       "#%d" % rng.randint(1, 9999), "%s%d%s" % (a, rng.randint(1, 9), b)])


TOKEN_KINDS = {"int": lambda rng: str(rng.randint(1, 500)), "number": _number, "price": _price, "percent": _percent,
               "date": _date, "time": _time, "code": _code}


def token(rng, kind="any"):
    """One generated token: a number, price, percentage, date, time or code."""
    if kind == "any":
        kind = rng.choice(["number", "number", "price", "percent", "date", "time", "code"])
    return TOKEN_KINDS[kind](rng)


def _word(rng, words, max_len=None):
    for _ in range(30):
        w = rng.choice(words)
        if max_len is None or len(w) <= max_len:
            return w
    return min(words, key=len)


def _punctuate(rng, w):
    r = rng.random()
    for p, pre, post in ((0.10, "", ","), (0.14, "", "."), (0.155, "", ";"), (0.17, "", ":"),
                         (0.185, "", "!"), (0.20, "", "?"), (0.23, "(", ")"), (0.26, '"', '"'),
                         (0.275, "'", "'")):
        if r < p:
            return pre + w + post
    return w


def _items(rng, words, n, token_p=0.25, max_len=None, sentence=False):
    out = []
    for i in range(n):
        if rng.random() < token_p:
            out.append(token(rng))
            continue
        w = _word(rng, words, max_len)
        r = rng.random()
        if r < 0.05:
            w = w.upper()
        elif r < 0.2 or (sentence and i == 0):
            w = w[:1].upper() + w[1:]
        if rng.random() < 0.03:
            w += "-" + _word(rng, words, 8).lower()
        out.append(_punctuate(rng, w) if i < n - 1 or rng.random() < 0.3 else w)
        if rng.random() < 0.02 and i < n - 1:
            out.append("-")
    if sentence and rng.random() < 0.6 and out[-1][-1:].isalnum():
        out[-1] += rng.choice(".....!?:")
    return out


def _wrap(items, width, measure=len):
    """Greedy word wrap of items (joined by spaces) to lines of measure(line) <= width."""
    lines, cur = [], ""
    for it in items:
        if cur and measure(cur + " " + it) > width:
            lines.append(cur)
            cur = it
        else:
            cur = cur + " " + it if cur else it
    return lines + [cur] if cur else lines


def _table_text(rng, words):
    left, right, kind = rng.choice(TABLE_HEADS)
    rows = rng.randint(2, 4)
    lines = [left + " | " + right] if rng.random() < 0.7 else []
    while len(lines) < rows:
        cell = " ".join(_items(rng, words, rng.choice([1, 1, 2]), token_p=0.0, max_len=9))
        cell = cell.strip(",;:") or "x"
        lines.append(cell[:1].upper() + cell[1:] + " | " + token(rng, kind))
    return "\n".join(lines)


def text_sample(rng, level, words):
    """The text of one sample at a curriculum level (0..4); lines joined with "\\n"."""
    if level == 0:
        return " ".join(_items(rng, words, rng.randint(1, 3), token_p=0.4, max_len=7))
    if level == 1:
        for _ in range(20):
            s = " ".join(_items(rng, words, rng.randint(3, 8), sentence=rng.random() < 0.5))
            if len(s) <= 48:
                return s
        return s[:48].rstrip()
    if level == 2:
        target, sentence = rng.randint(40, 60), rng.random() < 0.6
        for _ in range(20):  # a first line of at least 35 characters (whole items)
            s = _wrap(_items(rng, words, 30, sentence=sentence), target)[0]
            if len(s) >= 35:
                break
        return s
    if level == 3:
        n_lines, width = rng.randint(2, 4), rng.randint(24, 46)
        items = _items(rng, words, 60, token_p=0.15, sentence=True)
        return "\n".join(_wrap(items, width)[:n_lines])
    if level == 4:
        return _table_text(rng, words)
    raise ValueError("level must be 0..4, got %r" % (level,))
