"""dsocr_ref.ctc_aux: which texts carry the CTC loss, its targets, and that it trains what it
reads (gradients reach the image embeddings; a few steps on a fixed batch lower it)."""
import torch

from dsocr_ref import ctc_aux


def test_char_targets_use_single_short_lines_only():
    texts = ["ab", "two\nlines", "x" * (ctc_aux.MAX_CHARS + 1), "é?", ""]
    flat, lengths, used = ctc_aux.char_targets(texts)
    assert used.tolist() == [True, False, False, True, False]
    assert lengths.tolist() == [2, 0, 0, 2, 0]
    q = ctc_aux.INDEX["?"]
    assert flat.tolist() == [ctc_aux.INDEX["a"], ctc_aux.INDEX["b"], q, q]  # é is not ASCII: '?'
    assert 0 not in flat.tolist()  # class 0 is the blank


def test_loss_reaches_the_embeddings_and_falls():
    torch.manual_seed(0)
    img = torch.randn(3, 73, 16, requires_grad=True)
    head = ctc_aux.CtcHead(16)
    texts = ["hello", "a\nb", "OCR 42"]
    loss = ctc_aux.ctc_loss(head, img, texts)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert img.grad[0].abs().sum() > 0 and img.grad[2].abs().sum() > 0
    assert img.grad[1].abs().sum() == 0  # the two-line text carries no CTC loss
    opt = torch.optim.Adam(list(head.parameters()) + [img], lr=0.05)
    first = float(loss)
    for _ in range(30):
        opt.zero_grad()
        ctc_aux.ctc_loss(head, img, texts).backward()
        opt.step()
    assert float(ctc_aux.ctc_loss(head, img, texts)) < 0.5 * first


def test_no_usable_text_gives_zero():
    img = torch.randn(2, 73, 8, requires_grad=True)
    loss = ctc_aux.ctc_loss(ctc_aux.CtcHead(8), img, ["a\nb", ""])
    assert float(loss) == 0.0
    loss.backward()  # still part of the graph


def test_column_order_reads_the_grid_down_each_column():
    # 8 rows of 8 grid tokens, each row closed by a newline token, then the separator: 73 tokens
    img = torch.arange(73.0).reshape(1, 73, 1)
    order = ctc_aux.column_order(img).flatten().tolist()
    assert len(order) == 64
    assert order[:9] == [0, 9, 18, 27, 36, 45, 54, 63, 1]  # down column 0, then the top of column 1
    newlines, sep = {r * 9 + 8 for r in range(8)}, 72
    assert not (set(order) & (newlines | {sep}))
    assert sorted(order) == sorted(set(range(73)) - newlines - {sep})
    small = torch.arange(13.0).reshape(1, 13, 1)  # a 3 x 3 grid: 3 * 4 + 1
    assert ctc_aux.column_order(small).flatten().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10]
