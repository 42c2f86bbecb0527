#!/usr/bin/env python3
"""Writes the JPEG test files of tests/model/test_image.cpp and what Pillow makes of them.

cmyk.jpg   23x13 CMYK JPEG saved by Pillow (Adobe marker, inverted CMYK, as Pillow writes it)
grey.jpg   23x13 greyscale JPEG saved by Pillow
ycck.jpg   23x13 YCCK JPEG written by make_ycck.cpp (Pillow cannot write YCCK); read here only
<name>.pillow.png  Pillow's Image.open(<name>.jpg).convert("RGB"), lossless: the expected pixels

Run with Debian's Pillow (python3-pil, 9.4.0 when these were made):
  g++ -O1 -o /tmp/make_ycck tests/data/images/make_ycck.cpp -ljpeg && /tmp/make_ycck tests/data/images/ycck.jpg
  /usr/bin/python3 tests/data/images/make_images.py
"""
from pathlib import Path

import PIL
from PIL import Image

here = Path(__file__).resolve().parent
W, H = 23, 13


def pattern():
    im = Image.new("CMYK", (W, H))
    im.putdata([((x * 11) % 256, (y * 19) % 256, ((x + y) * 7) % 256, (x * y * 3) % 200)
                for y in range(H) for x in range(W)])
    return im


pattern().save(here / "cmyk.jpg", quality=90)
pattern().convert("RGB").convert("L").save(here / "grey.jpg", quality=90)
for name in ["cmyk", "grey", "ycck"]:
    im = Image.open(here / f"{name}.jpg")
    print(f"{name}.jpg: mode {im.mode}, adobe {im.info.get('adobe')}, transform {im.info.get('adobe_transform')}")
    im.convert("RGB").save(here / f"{name}.pillow.png")
print("Pillow", PIL.__version__)
