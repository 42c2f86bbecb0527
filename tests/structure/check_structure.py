#!/usr/bin/env python3
"""The layout rules of docs/architecture.md, checked on the source tree.

1. Layers: each library includes only itself and the libraries below it
       runtime  <-  model  <-  ocr, parity  <-  apps, bench (tests and fuzz may include anything)
   and a few dependencies stay in one place: HDF5 in parity/ (and tests), poppler in ocr/pdf.cpp.
2. No getenv in runtime/ops/: tunables come from runtime/tuning.h through RuntimeOptions.
3. Sizes: no C++, OpenCL or Python source over MAX_FILE_LINES lines, no C++/OpenCL function body
   over MAX_FUNCTION_LINES lines (from the line of its opening brace to its closing brace).

Usage: check_structure.py [ROOT]      exit 0 clean, 1 with one line per violation
       check_structure.py --self-test builds a small tree with one violation of each rule and
                                      fails unless every one is reported (a checker that finds
                                      nothing cannot pass).
"""
import os
import re
import subprocess
import sys
import tempfile

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 120

# library folder -> the folders it may include from (its own included)
LAYERS = {
    "runtime": {"runtime"},
    "model": {"runtime", "model"},
    "ocr": {"runtime", "model", "ocr"},
    "parity": {"runtime", "model", "parity"},
    "apps": {"runtime", "model", "ocr", "parity", "apps", "bench"},
    "bench": {"runtime", "model", "ocr", "parity", "apps", "bench"},
}
# system header prefix -> the files or folders allowed to include it
CONFINED = {
    "hdf5": ("parity/", "tests/", "fuzz/"),
    "poppler/": ("ocr/pdf.cpp", "tests/", "fuzz/"),
}
SOURCE_EXT = (".cpp", ".h", ".cl", ".py")
CHECKED_DIRS = ("runtime", "model", "ocr", "parity", "apps", "bench", "kernels", "tests", "fuzz", "reference",
                "scripts", "examples")

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def source_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-co", "--exclude-standard"], check=True,
                             capture_output=True, text=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        out = []
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith((".", "build"))]
            out += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return sorted(f for f in out if f.endswith(SOURCE_EXT) and f.split("/")[0] in CHECKED_DIRS
                  and os.path.isfile(os.path.join(root, f)))


def strip_code(text):
    """Text with comments, string and char literals blanked (newlines kept), for brace counting."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


NOT_FUNCTION = re.compile(r"^\s*(namespace|class|struct|union|enum|extern|if|for|while|switch|do|else|try|catch)\b")


def long_functions(text):
    """(line, length, head) of each outermost function body longer than MAX_FUNCTION_LINES."""
    code = strip_code(text)
    found, stack, head_start, line = [], [], 0, 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            head = code[head_start:i]
            is_fn = ("(" in head and ")" in head and not NOT_FUNCTION.search(head.strip().split("\n")[-1])
                     and not head.rstrip().endswith(("=", ",", "(", "return")))
            in_fn = any(kind == "fn" for kind, _, _ in stack)
            stack.append(("fn" if is_fn and not in_fn else "block", line, head.strip().split("\n")[-1][:80]))
            head_start = i + 1
        elif c == "}":
            if stack:
                kind, start, head = stack.pop()
                if kind == "fn" and line - start + 1 > MAX_FUNCTION_LINES:
                    found.append((start, line - start + 1, head))
            head_start = i + 1
        elif c == ";":
            head_start = i + 1
    return found


def check(root):
    problems = []
    for rel in source_files(root):
        path = os.path.join(root, rel)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > MAX_FILE_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_FILE_LINES}): split it along its seams")
        if rel.endswith(".py"):
            continue
        top = rel.split("/")[0]
        for no, src in enumerate(text.split("\n"), 1):
            m = INCLUDE.match(src)
            if not m:
                continue
            kind, target = m.groups()
            if kind == '"' and top in LAYERS:
                lib = target.split("/")[0]
                if lib in LAYERS and lib not in LAYERS[top]:
                    problems.append(f"{rel}:{no}: includes {target}: {top}/ may include only "
                                    f"{', '.join(sorted(LAYERS[top]))}")
            for prefix, allowed in CONFINED.items():
                if target.startswith(prefix) and not rel.startswith(allowed):
                    problems.append(f"{rel}:{no}: includes <{target}>: only {', '.join(allowed)} may")
        if rel.startswith("runtime/ops/") and re.search(r"\bgetenv\s*\(", strip_code(text)):
            problems.append(f"{rel}: calls getenv: ops read their tunables from rt.tuning() (runtime/tuning.h)")
        for start, length, head in long_functions(text):
            problems.append(f"{rel}:{start}: function of {length} lines (at most {MAX_FUNCTION_LINES}): {head}")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as d:
        def put(rel, text):
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        put("runtime/a.cpp", '#include "model/config.h"\n')
        put("model/b.cpp", "#include <hdf5.h>\n")
        put("ocr/c.cpp", '#include "parity/golden.h"\n')
        put("runtime/ops/d.cpp", 'int f() { return std::getenv("X") != nullptr; }\n')
        put("model/e.cpp", "int g() {\n" + "  int x = 0;\n" * 130 + "  return 0;\n}\n")
        put("model/f.cpp", "// ok\n" * 501)
        put("model/ok.cpp", 'namespace dsocr {\nint h() {\n  const char* s = "}}}";\n  return 0;\n}\n}\n')
        got = check(d)
        want = ["runtime/a.cpp:1", "model/b.cpp:1", "ocr/c.cpp:1", "runtime/ops/d.cpp: calls getenv",
                "model/e.cpp:1: function of 133 lines", "model/f.cpp: 501 lines"]
        missing = [w for w in want if not any(p.startswith(w) for p in got)]
        extra = [p for p in got if not any(p.startswith(w) for w in want)]
        if missing or extra:
            print("check_structure self-test failed:\n  missing: %s\n  unexpected: %s" % (missing, extra))
            return 1
    print("check_structure self-test: every planted violation found")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    problems = check(os.path.abspath(root))
    for p in problems:
        print(p)
    print(f"check_structure: {len(problems)} problem(s)" if problems else "check_structure: layout clean")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
