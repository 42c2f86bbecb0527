// Drawing grounding boxes onto an RGB image (as the official script's draw_bounding_boxes: an
// outline of width 4 for `title`, 2 otherwise, a translucent fill, the label above the box in a
// built-in 5x7 bitmap font) and writing images: PNG through libpng, JPEG through libjpeg.
// Files are written to a temporary name and renamed, so a failed write leaves no partial file.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/image.h"

namespace dsocr {

struct LabelledBox {
  std::string label;
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // pixels; x2, y2 inclusive as PIL's rectangle; may lie outside
};

// A fixed colour per label (a hash into a palette of well-separated colours).
std::array<uint8_t, 3> label_colour(const std::string& label);

// Draws every box (clipped to the image); labels are drawn when `labels` is true.
void draw_boxes(RgbImage& im, const std::vector<LabelledBox>& boxes, bool labels = true);

// Draws `text` (ASCII; other bytes as '?') with its top-left corner at (x, y), `scale` pixels per
// font pixel, over a white background box.
void draw_text(RgbImage& im, int x, int y, const std::string& text, std::array<uint8_t, 3> colour, int scale = 1);

// The region [x1, x2) x [y1, y2) clipped to the image (PIL's crop box convention); an image with
// no pixels when nothing is left.
RgbImage crop_image(const RgbImage& im, int x1, int y1, int x2, int y2);

// Throw Error naming the path and the reason.
void write_png(const std::string& path, const RgbImage& im);
void write_jpeg(const std::string& path, const RgbImage& im, int quality = 90);

// The format a file name's extension names (case-insensitive): .png, or .jpg / .jpeg.
enum class ImageFileFormat { png, jpeg, unknown };
ImageFileFormat image_format_of(const std::string& path);
// Writes the format the extension names; throws Error for any other extension.
void write_image(const std::string& path, const RgbImage& im);

}  // namespace dsocr
