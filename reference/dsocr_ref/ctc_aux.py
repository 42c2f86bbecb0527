"""A training-only auxiliary loss for the demo model (issue 14): CTC from the image embeddings.

The decoder can lower its loss a long way from the language prior alone, and two training runs sat
there without ever reading. This loss reaches the vision encoder directly: a linear head reads the
64 grid embeddings of the tiny view (8 rows of 8 tokens; the newline and separator embeddings are
left out) column by column, top to bottom within a column, and CTC asks them for the characters of
the text. A single line stretched over the whole view (synth's fit canvas) is read in that order:
left to right, with the 8 tokens of a column free to share that column's characters. It applies to
single-line texts of at most MAX_CHARS characters; the other samples of a batch carry no CTC loss.
The head is not part of the model or its checkpoint.
"""
import math

import torch
import torch.nn.functional as F

CHARS = [chr(c) for c in range(32, 127)]  # printable ASCII; class 0 is CTC's blank
INDEX = {c: i + 1 for i, c in enumerate(CHARS)}
MAX_CHARS = 56  # CTC needs one slot per character (and a blank between repeats) of the 64


class CtcHead(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.proj = torch.nn.Linear(hidden, len(CHARS) + 1)

    def forward(self, img):
        """img [B,73,hidden] (image_embeds' layout) -> log-probabilities [64,B,classes] (CTC's
        layout), the grid tokens in column order."""
        return F.log_softmax(self.proj(column_order(img).float()), dim=-1).transpose(0, 1)


def column_order(img):
    """[B, s*(s+1)+1, C] (s rows of s tokens + newline, then the separator) -> [B, s*s, C]: the grid
    tokens column by column, top to bottom."""
    s = (math.isqrt(4 * img.shape[1] - 3) - 1) // 2  # s*(s+1)+1 = n
    grid = img[:, :s * (s + 1)].reshape(img.shape[0], s, s + 1, img.shape[2])[:, :, :s]
    return grid.transpose(1, 2).reshape(img.shape[0], s * s, img.shape[2])


def char_targets(texts):
    """-> (targets [sum of lengths], lengths [B], used [B] bool): the characters of each usable
    text (one line, 1..MAX_CHARS characters, printable ASCII; others map to '?')."""
    flat, lengths, used = [], [], []
    for t in texts:
        ok = "\n" not in t and 0 < len(t) <= MAX_CHARS
        ids = [INDEX.get(c, INDEX["?"]) for c in t] if ok else []
        flat += ids
        lengths.append(len(ids))
        used.append(ok)
    return torch.tensor(flat, dtype=torch.long), torch.tensor(lengths, dtype=torch.long), torch.tensor(used)


def ctc_loss(head, img, texts):
    """Mean CTC loss per used sample (per target character), 0 when no sample is used."""
    targets, lengths, used = char_targets(texts)
    if not bool(used.any()):
        return img.float().sum() * 0.0
    lp = head(img)[:, used.to(img.device)]
    n = torch.full((lp.shape[1],), lp.shape[0], dtype=torch.long, device=lp.device)
    return F.ctc_loss(lp, targets.to(lp.device), n, lengths[used].to(lp.device), blank=0, reduction="mean",
                      zero_infinity=True)
