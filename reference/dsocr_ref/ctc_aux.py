"""A training-only auxiliary loss for the demo model (issue 14): CTC from the image embeddings.

The decoder can lower its loss a long way from the language prior alone, and two training runs sat
there without ever reading. This loss reaches the vision encoder directly: a linear head reads the
73 image embeddings of the tiny view in their order (8 rows of 8 tokens, each row closed by the
newline embedding, then the view separator: raster order, which is reading order for a line of
text) and CTC asks them for the characters of the text. It applies to single-line texts of at most
MAX_CHARS characters (raster order is not reading order for several lines in one token row); the
other samples of a batch carry no CTC loss. The head is not part of the model or its checkpoint.
"""
import torch
import torch.nn.functional as F

CHARS = [chr(c) for c in range(32, 127)]  # printable ASCII; class 0 is CTC's blank
INDEX = {c: i + 1 for i, c in enumerate(CHARS)}
MAX_CHARS = 48


class CtcHead(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.proj = torch.nn.Linear(hidden, len(CHARS) + 1)

    def forward(self, img):
        """img [B,N,hidden] -> log-probabilities [N,B,classes] (CTC's layout)."""
        return F.log_softmax(self.proj(img.float()), dim=-1).transpose(0, 1)


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
