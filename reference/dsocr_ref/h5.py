"""Writer and reader of golden case files (docs/golden-contract.md, schema version 1)."""
import os
import time

import h5py
import numpy as np
import torch

FORMAT = "dsocr-golden"
VERSION = 1
# datasets larger than this are stored chunked with shuffle+gzip (transparent to any HDF5 reader)
COMPRESS_MIN_BYTES = 16 * 1024


def source_string():
    import PIL
    import tokenizers
    return (f"dsocr_ref (torch {torch.__version__}, h5py {h5py.__version__}, Pillow {PIL.__version__}, "
            f"tokenizers {tokenizers.__version__})")


def _np(a, kind):
    """To a C-order numpy array of a contract dtype: float32 for floats (a numpy float16 array is
    kept: values exact in half, stored in half the bytes), int32/int64/uint8 kept."""
    if isinstance(a, torch.Tensor):
        a = a.detach()
        if a.is_floating_point():
            a = a.to(torch.float32)
        a = a.numpy()
    a = np.ascontiguousarray(a)
    if a.dtype.kind == "f" and a.dtype != np.float16:
        a = a.astype(np.float32)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8)
    elif a.dtype not in (np.float16, np.int32, np.int64, np.uint8):
        raise TypeError(f"{kind}: dtype {a.dtype} not allowed by the contract")
    return a


def _attr(v):
    if isinstance(v, bool):
        return np.int64(int(v))
    if isinstance(v, int):
        return np.int64(v)
    if isinstance(v, float):
        return np.float64(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return np.asarray(v, dtype=np.int64)
    if isinstance(v, np.ndarray):
        return v
    raise TypeError(f"attribute value {v!r}")


def write_case(path, op, params=None, inputs=None, weights=None, outputs=None, taps=None, seed=None,
               atol=None, rtol=None):
    """One golden file. params: op parameters and structure attributes (root attributes)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        f.attrs["format"] = FORMAT
        f.attrs["version"] = np.int64(VERSION)
        f.attrs["op"] = op
        if seed is not None:
            f.attrs["seed"] = np.int64(seed)
        f.attrs["source"] = source_string()
        if atol is not None:
            f.attrs["atol"] = np.float64(atol)
        if rtol is not None:
            f.attrs["rtol"] = np.float64(rtol)
        for k, v in (params or {}).items():
            f.attrs[k] = _attr(v)
        for gname, d in (("inputs", inputs), ("weights", weights), ("outputs", outputs), ("taps", taps)):
            if not d:
                continue
            g = f.create_group(gname, track_order=True)
            for name, a in d.items():
                a = _np(a, f"{gname}/{name}")
                kw = {}
                if a.nbytes >= COMPRESS_MIN_BYTES and a.ndim > 0:
                    kw = dict(compression="gzip", compression_opts=6, shuffle=True)
                g.create_dataset(name, data=a, **kw)
    os.replace(tmp, path)


def read_case(path):
    """-> dict(attrs=..., inputs=..., weights=..., outputs=..., taps=...) of numpy arrays."""
    out = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        for g in ("inputs", "weights", "outputs", "taps"):
            out[g] = {k: f[g][k][()] for k in f[g]} if g in f else {}
    return out


def case_registry():
    """(CASES, case): a list of (name, writer) and the decorator `@case(name)` that appends to it,
    in definition order (the golden writers' case tables)."""
    cases = []

    def case(name):
        def deco(fn):
            cases.append((name, fn))
            return fn
        return deco
    return cases, case


def run_cases(cases, cx, only=None, log=print):
    """Writes each (name, writer) of `cases` whose name contains one of `only` (all when None) into
    cx (writer(cx) writes cx.path(name)), logging its size and time -> the paths written."""
    paths = []
    for name, fn in cases:
        if only and not any(o in name for o in only):
            continue
        t = time.time()
        fn(cx)
        p = cx.path(name)
        paths.append(p)
        log(f"  model/{name}.h5  {os.path.getsize(p) / 1024:.0f} KiB  {time.time() - t:.2f}s")
    return paths
