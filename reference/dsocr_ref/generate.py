"""Greedy decoding with the no-repeat n-gram rule of the official vLLM scripts
(process/ngram_norepeat.py, model-spec §4): for the ids seen so far (here: the generated ids only,
as vLLM v0's two-argument logits processors receive them), if len >= n, the last n-1 ids form the
prefix; for each start s in [max(0, len-window), len-n], if ids[s:s+n-1] == prefix then
ids[s+n-1] is banned; whitelisted ids are never banned; banned logits are set to -inf.
Decoding uses a KV cache (prefill once, then one token per step), stops at EOS (included in the
output) or after max_new_tokens."""
import torch


def banned_ngram_tokens(ids, n, window, whitelist=()):
    if len(ids) < n:
        return set()
    prefix = tuple(ids[len(ids) - (n - 1):]) if n > 1 else ()
    start = max(0, len(ids) - window)
    end = len(ids) - n + 1
    banned = set()
    for s in range(start, end):
        if tuple(ids[s:s + n - 1]) == prefix:
            banned.add(ids[s + n - 1])
    return banned - set(whitelist)


@torch.no_grad()
def generate(m, input_ids, image_embeds=None, image_token_id=None, max_new_tokens=64, ngram_size=0,
             ngram_window=0, whitelist=(), eos_id=1, stats=None):
    """-> list of generated ids. stats (dict, optional) gets 'min_margin' (smallest gap between the
    chosen logit and the best other allowed logit) and 'n_banned_steps'."""
    x = m.embed(input_ids, image_embeds, image_token_id)
    caches = [dict() for _ in m.model.layers]
    logits = m.decode(x, torch.arange(input_ids.shape[0]), kv_caches=caches)[-1]
    out = []
    min_margin, banned_steps = float("inf"), 0
    pos = input_ids.shape[0]
    for step in range(max_new_tokens):
        lg = logits.clone()
        if ngram_size > 0:
            banned = banned_ngram_tokens(out, ngram_size, ngram_window, whitelist)
            if banned:
                banned_steps += 1
                lg[list(banned)] = float("-inf")
        top2 = torch.topk(lg, 2)
        tok = int(top2.indices[0])
        min_margin = min(min_margin, float(top2.values[0] - top2.values[1]))
        out.append(tok)
        if tok == eos_id:
            break
        e = m.model.embed_tokens.weight[torch.tensor([tok])]
        logits = m.decode(e, torch.tensor([pos]), kv_caches=caches)[-1]
        pos += 1
    if stats is not None:
        stats["min_margin"] = min_margin
        stats["n_banned_steps"] = banned_steps
    return out
