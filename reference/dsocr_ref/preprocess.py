"""Image views of DeepSeek-OCR v1 and DeepSeek-OCR-2 with Pillow itself (model-spec §3), so the values
are the official ones by construction (PIL BICUBIC, ImageOps.pad with grey 127, the grid search).

DeepSeek-OCR-2 has a single mode (`views_v2`): the global view padded to 1024, plus 768 tiles chosen by
the same grid search with at most 6 tiles (none when W and H are both <= 768, else 2 to 6)."""
import numpy as np
import torch
from PIL import Image, ImageOps

MODES = {  # mode: (base_size, image_size, crop)
    "tiny": (512, 512, False),
    "small": (640, 640, False),
    "base": (1024, 1024, False),
    "large": (1280, 1280, False),
    "gundam": (1024, 640, True),
}
PAD_COLOR = (127, 127, 127)  # tuple(int(x * 255) for x in mean 0.5)

# Python 3.11's iteration order of the candidate set, then stably sorted by i·j (model-spec §3)
CANDIDATES = {
    6: [(1, 2), (2, 1), (3, 1), (1, 3), (4, 1), (1, 4), (2, 2), (1, 5), (5, 1), (6, 1), (2, 3), (1, 6), (3, 2)],
    9: [(1, 2), (2, 1), (3, 1), (1, 3), (2, 2), (4, 1), (1, 4), (5, 1), (1, 5), (1, 6), (6, 1), (3, 2), (2, 3),
        (7, 1), (1, 7), (4, 2), (2, 4), (1, 8), (8, 1), (1, 9), (3, 3), (9, 1)],
}


def official_candidates(max_num, min_num=2):
    """The official expression, evaluated here (to check CANDIDATES against this Python)."""
    s = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
            if i * j <= max_num and i * j >= min_num)
    return sorted(s, key=lambda x: x[0] * x[1])


def find_closest_aspect_ratio(aspect_ratio, target_ratios, width, height, image_size):
    best_ratio_diff = float("inf")
    best_ratio = (1, 1)
    area = width * height
    for ratio in target_ratios:
        target_aspect_ratio = ratio[0] / ratio[1]
        ratio_diff = abs(aspect_ratio - target_aspect_ratio)
        if ratio_diff < best_ratio_diff:
            best_ratio_diff = ratio_diff
            best_ratio = ratio
        elif ratio_diff == best_ratio_diff:
            if area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
                best_ratio = ratio
    return best_ratio


def dynamic_preprocess(image, max_num=9, image_size=640):
    """-> (tiles [PIL], (cols, rows))."""
    w, h = image.size
    ratios = CANDIDATES[max_num] if max_num in CANDIDATES else official_candidates(max_num)
    cols, rows = find_closest_aspect_ratio(w / h, ratios, w, h, image_size)
    tw, th = image_size * cols, image_size * rows
    resized = image.resize((tw, th))  # default resample: BICUBIC
    tiles = []
    for i in range(cols * rows):
        x0 = (i % cols) * image_size
        y0 = (i // cols) * image_size
        tiles.append(resized.crop((x0, y0, x0 + image_size, y0 + image_size)))
    return tiles, (cols, rows)


def to_tensor(img):
    """ToTensor + Normalize(0.5, 0.5) in fp32: (x/255 - 0.5)/0.5, NCHW with N = 1."""
    a = np.asarray(img.convert("RGB"), dtype=np.uint8)
    t = torch.from_numpy(a.copy()).permute(2, 0, 1).to(torch.float32).div(255.0)
    return ((t - 0.5) / 0.5)[None]


def load_rgb(path):
    """Open, EXIF-transpose, RGB (as the HF infer does)."""
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    return img.convert("RGB")


def views(image, mode, max_tiles=9):
    """image: PIL RGB (already EXIF-transposed). -> (global_view [1,3,G,G], tiles [n,3,T,T], (cols, rows)).
    mode "ocr2": DeepSeek-OCR-2's one mode (views_v2)."""
    if mode == V2_MODE:
        return views_v2(image, max_tiles)
    base, size, crop = MODES[mode]
    if crop:
        return _crop_views(image, base, size, max_tiles)
    img = image
    if size <= 640:
        img = img.resize((size, size))
    g = ImageOps.pad(img, (size, size), color=PAD_COLOR)
    return to_tensor(g), torch.zeros(0, 3, size, size), (1, 1)


def _crop_views(image, base, size, max_tiles):
    """Crop mode: the global view padded to base, plus size² tiles when W or H exceeds size."""
    w, h = image.size
    if w <= size and h <= size:
        tiles, grid = [], (1, 1)
    else:
        tiles, grid = dynamic_preprocess(image, max_tiles, size)
    g = ImageOps.pad(image, (base, base), color=PAD_COLOR)
    glob = to_tensor(g)
    if grid[0] > 1 or grid[1] > 1:
        tt = torch.cat([to_tensor(t) for t in tiles], dim=0)
    else:
        tt = torch.zeros(0, 3, size, size)
    return glob, tt, grid


# ---- DeepSeek-OCR-2 (model-spec §3): one mode, base 1024, tiles 768, at most 6 tiles
V2_MODE, V2_BASE, V2_TILE, V2_MAX_TILES = "ocr2", 1024, 768, 6
V2_GLOBAL_TOKENS, V2_TILE_TOKENS = 256, 144  # (1024/64)², (768/64)²


def views_v2(image, max_tiles=V2_MAX_TILES):
    """image: PIL RGB (already EXIF-transposed) -> (global_view [1,3,1024,1024], tiles [n,3,768,768]
    with n = 0 or 2..max_tiles, (cols, rows))."""
    return _crop_views(image, V2_BASE, V2_TILE, max_tiles)


def grid_v2(width, height, max_tiles=V2_MAX_TILES):
    """The (cols, rows) that views_v2 picks for an image of that size; (1, 1) = no tiles."""
    if width <= V2_TILE and height <= V2_TILE:
        return (1, 1)
    ratios = CANDIDATES[max_tiles] if max_tiles in CANDIDATES else official_candidates(max_tiles)
    return find_closest_aspect_ratio(width / height, ratios, width, height, V2_TILE)


def n_image_tokens_v2(n_tiles=0):
    """DeepSeek-OCR-2 placeholder count: 256 global + 144 per tile + 1 separator (257..1121 for 0, 2..6 tiles)."""
    if n_tiles == 1 or n_tiles < 0:
        raise ValueError(f"{n_tiles} tiles: DeepSeek-OCR-2 uses 0 or 2..max tiles")
    return V2_GLOBAL_TOKENS + 1 + V2_TILE_TOKENS * n_tiles


def n_image_tokens(mode, grid=(1, 1), n_tiles=0):
    """Placeholder count (model-spec §3)."""
    base, size, crop = MODES[mode]
    if crop:
        n = 16 * 17 + 1
        if n_tiles:
            cols, rows = grid
            n += (10 * rows) * (10 * cols + 1)
        return n
    q = size // 64
    return q * (q + 1) + 1
