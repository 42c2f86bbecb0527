"""The test images of the goldens, made deterministically with Pillow (default bitmap font):
rendered text pages, a table, a gradient, a grayscale and an RGBA image, and a JPEG whose EXIF
orientation must be applied."""
import os

from PIL import Image, ImageDraw, ImageFont

LINES = [
    "DeepSeek-OCR test page", "", "1. Introduction",
    "Optical character recognition turns scanned pages into text.",
    "Tables, formulas and charts remain the hard part.", "",
    "Revenue 2024: 1,234,567 USD (+12.5%)", "Cost 2024: 987,654 USD", "",
    "E = mc^2   a^2 + b^2 = c^2   sum_i x_i", "The quick brown fox jumps over the lazy dog.",
]


def _font():
    return ImageFont.load_default()


def text_page(w=900, h=1200):
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    f = _font()
    y = 30
    k = 0
    while y < h - 40:  # sparse: mostly white paper, as a scanned page (and compressible files)
        line = LINES[k % len(LINES)]
        d.text((40 + 60 * (k % 3), y), line, fill=(0, 0, 0), font=f)
        y += 22 if k % 4 else 90
        k += 1
    d.rectangle((30, 20, w - 30, h - 20), outline=(40, 40, 160), width=3)
    return img


def table(w=1250, h=500, rows=6, cols=5):
    img = Image.new("RGB", (w, h), (250, 250, 245))
    d = ImageDraw.Draw(img)
    f = _font()
    x0, y0, x1, y1 = 20, 20, w - 20, h - 20
    for r in range(rows + 1):
        y = y0 + (y1 - y0) * r // rows
        d.line((x0, y, x1, y), fill=(0, 0, 0), width=2)
    for c in range(cols + 1):
        x = x0 + (x1 - x0) * c // cols
        d.line((x, y0, x, y1), fill=(0, 0, 0), width=2)
    for r in range(rows):
        for c in range(cols):
            x = x0 + (x1 - x0) * c // cols + 10
            y = y0 + (y1 - y0) * r // rows + 10
            txt = "Header %d" % c if r == 0 else "%d.%02d" % (r * 37 + c * 11, (r * c * 7) % 100)
            d.text((x, y), txt, fill=(20, 20, 20) if r else (150, 0, 0), font=f)
    return img


def gradient(w=333, h=517):
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            # posterised (steps of 8): smooth enough for resampling, and compressible files
            px[x, y] = (((x * 255) // (w - 1)) & 0xF8, ((y * 255) // (h - 1)) & 0xF8, (((x + y) * 3) % 256) & 0xF8)
    return img


def grayscale(w=700, h=300):
    img = Image.new("L", (w, h), 230)
    d = ImageDraw.Draw(img)
    for i in range(10):
        d.text((20, 20 + 26 * i), "Grayscale scan, line %d: 0123456789" % i, fill=10 + 20 * i, font=_font())
    return img


def rgba(w=640, h=480):
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rectangle((40, 40, 600, 440), fill=(30, 120, 200, 255))
    d.ellipse((100, 100, 400, 380), fill=(240, 200, 20, 128))
    d.text((60, 60), "Transparent background (RGBA)", fill=(255, 255, 255, 255), font=_font())
    return img


def exif_jpeg_source(w=1000, h=400):
    """Stored landscape 1000x400 with EXIF orientation 6 (displayed rotated: 400x1000)."""
    return table(w, h, rows=4, cols=4)


def write_all(outdir):
    """-> {name: path}."""
    os.makedirs(outdir, exist_ok=True)
    out = {}

    def save(name, img, **kw):
        p = os.path.join(outdir, name)
        img.save(p, **kw)
        out[name] = p

    save("text_page.png", text_page())
    save("table_wide.png", table())
    save("gradient.png", gradient())
    save("grayscale.png", grayscale())
    save("rgba.png", rgba())
    ex = Image.Exif()
    ex[0x0112] = 6
    save("exif_rot6.jpg", exif_jpeg_source(), quality=90, exif=ex.tobytes())
    return out
