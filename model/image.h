// Image decoding to 8-bit RGB as Pillow's `ImageOps.exif_transpose(Image.open(f)).convert("RGB")`
// gives it: PNG (grey, grey+alpha, RGB, RGBA, palette, 16-bit) through libpng, JPEG (grey, YCbCr,
// RGB, CMYK, YCCK) through libjpeg-turbo with the EXIF orientation applied. Alpha is dropped, not
// composited (as convert("RGB") does); 16-bit samples keep their high byte (RGB) or clip to 255
// (grey, as Pillow's I;16 -> RGB conversion does). 4-channel JPEGs are read as Adobe's inverted
// CMYK and converted as Pillow's CMYK -> RGB (R = (255-K) - (255-K)*C/255). Damaged data is an
// error, never a silently grey picture: truncated files, and libjpeg's "corrupt data" warnings.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsocr {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height, width, 3]
  uint8_t at(int x, int y, int c) const { return rgb[(static_cast<size_t>(y) * width + x) * 3 + c]; }
};

// Decodes PNG or JPEG from memory (format sniffed from the bytes). Throws Error with `name` and
// the reason for corrupt, truncated or unsupported data, and for images over 2^28 pixels.
RgbImage decode_image(const std::vector<uint8_t>& bytes, const std::string& name);
RgbImage load_image(const std::string& path);  // "-" reads standard input

// EXIF orientation (1..8) applied as ImageOps.exif_transpose does.
RgbImage apply_orientation(const RgbImage& im, int orientation);

}  // namespace dsocr
