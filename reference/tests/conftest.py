import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # reference/ -> import dsocr_ref
torch.set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(HERE))
GOLDENS = os.path.join(REPO, "tests", "goldens")
OFFICIAL = os.environ.get("DSOCR_OFFICIAL", os.path.join(os.path.dirname(REPO), "shared", "official"))
if not os.path.isdir(OFFICIAL):
    OFFICIAL = "/work/shared/official"
