// The grounding tags <|ref|>label<|/ref|><|det|>[[x1,y1,x2,y2]]<|/det|> (0-999 grid) and their boxes.
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace dsocr {

// The tags around a grounding match (the markdown post-processing looks for them too).
inline const std::string kRef = "<|ref|>", kRefDet = "<|/ref|><|det|>", kDetEnd = "<|/det|>";

using Box999 = std::array<double, 4>;  // x1, y1, x2, y2 on the 0-999 grid

// One match of (<\|ref\|>(.*?)<\|/ref\|><\|det\|>(.*?)<\|/det\|>) with DOTALL.
struct RefMatch {
  size_t begin = 0, end = 0;  // byte range of the whole match in the text
  std::string label, det;     // the two groups
  bool det_ok = false;        // det parsed as a list of boxes
  std::vector<Box999> boxes;  // the boxes of 4 numbers (others are skipped)
};

// Every match, left to right (re.findall order).
std::vector<RefMatch> find_refs(const std::string& text);

// Parses a det group as the official script's eval() would: a Python list of [x1,y1,x2,y2]
// lists (a single flat [x1,y1,x2,y2] is accepted too), integer or float literals. Boxes that are
// not 4 numbers are skipped. Returns false when the text is not such a list.
bool parse_det(const std::string& det, std::vector<Box999>& boxes);

// pixel = int(c / 999 * W) (x) or int(c / 999 * H) (y), truncated towards zero as Python's int().
struct PixelBox {
  std::string label;
  std::array<int, 4> px{};  // x1, y1, x2, y2 in pixels (not clipped to the image)
  Box999 grid{};            // as generated
};
std::array<int, 4> scale_box(const Box999& b, int width, int height);
std::vector<PixelBox> pixel_boxes(const std::string& text, int width, int height);

}  // namespace dsocr
