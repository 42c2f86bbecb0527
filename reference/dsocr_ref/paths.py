"""Where the official configuration files (no weights) are found.

A clean clone carries them in the repository: tests/data/official/ (config.json,
tokenizer_config.json, special_tokens_map.json, processor_config.json of both models, and
the model.safetensors.index.json of both, the official names for the reference's name/shape
tests). Search order, file by file: $DSOCR_OFFICIAL, then that folder.
"""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def official_dirs():
    dirs = []
    env = os.environ.get("DSOCR_OFFICIAL")
    if env:
        dirs.append(env)
    dirs.append(os.path.join(REPO, "tests", "data", "official"))
    return dirs


def official(rel):
    """Path of an official file, e.g. official("deepseek-ocr/config.json")."""
    tried = []
    for d in official_dirs():
        p = os.path.join(d, rel)
        if os.path.isfile(p):
            return p
        tried.append(p)
    raise FileNotFoundError(f"official file {rel} not found; tried {tried}")
