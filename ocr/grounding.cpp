#include "ocr/grounding.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "runtime/error.h"

namespace dsocr {

namespace {
struct DetParser {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  // A Python int or float literal with an optional sign.
  bool number(double& v) {
    ws();
    size_t b = i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t d0 = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    size_t int_digits = i - d0;
    bool is_float = false;
    if (i < s.size() && s[i] == '.') {
      is_float = true;
      ++i;
      size_t f0 = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (int_digits == 0 && i == f0) return false;
    } else if (int_digits == 0) {
      return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      size_t e = i++;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      size_t e0 = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (i == e0) {
        i = e;
        return false;
      }
      is_float = true;
    }
    // Python 3 rejects integer literals with leading zeros ("012"; "00" is fine).
    if (!is_float && int_digits > 1 && s[d0] == '0' && s.find_first_not_of('0', d0) < i) return false;
    if (i - b > 64) return false;
    v = std::strtod(s.substr(b, i - b).c_str(), nullptr);
    return std::isfinite(v);
  }
};

}  // namespace

bool parse_det(const std::string& det, std::vector<Box999>& boxes) {
  boxes.clear();
  DetParser p{det};
  if (!p.eat('[')) return false;
  std::vector<double> flat;
  bool any_list = false;
  p.ws();
  if (!p.eat(']')) {
    for (;;) {
      p.ws();
      if (p.i < det.size() && det[p.i] == '[') {
        ++p.i;
        any_list = true;
        std::vector<double> v;
        if (!p.eat(']')) {
          for (;;) {
            double x;
            if (!p.number(x)) return false;
            v.push_back(x);
            if (p.eat(']')) break;
            if (!p.eat(',')) return false;
            if (p.eat(']')) break;  // trailing comma
          }
        }
        if (v.size() == 4) boxes.push_back({v[0], v[1], v[2], v[3]});
      } else {
        double x;
        if (!p.number(x)) return false;
        flat.push_back(x);
      }
      if (p.eat(']')) break;
      if (!p.eat(',')) return false;
      if (p.eat(']')) break;
      if (boxes.size() > 100000 || flat.size() > 100000) return false;
    }
  }
  p.ws();
  if (p.i != det.size()) return false;
  if (!any_list && flat.size() == 4) boxes.push_back({flat[0], flat[1], flat[2], flat[3]});
  return true;
}

std::vector<RefMatch> find_refs(const std::string& text) {
  std::vector<RefMatch> out;
  size_t pos = 0;
  for (;;) {
    size_t r = text.find(kRef, pos);
    if (r == std::string::npos) break;
    size_t a = text.find(kRefDet, r + kRef.size());
    if (a == std::string::npos) break;  // no later start can match either
    size_t d = text.find(kDetEnd, a + kRefDet.size());
    if (d == std::string::npos) break;
    RefMatch m;
    m.begin = r;
    m.end = d + kDetEnd.size();
    m.label = text.substr(r + kRef.size(), a - r - kRef.size());
    m.det = text.substr(a + kRefDet.size(), d - a - kRefDet.size());
    m.det_ok = parse_det(m.det, m.boxes);
    out.push_back(std::move(m));
    pos = d + kDetEnd.size();
  }
  return out;
}

std::array<int, 4> scale_box(const Box999& b, int width, int height) {
  std::array<int, 4> px{};
  for (int k = 0; k < 4; ++k) {
    double v = b[k] / 999.0 * (k % 2 == 0 ? width : height);
    v = std::clamp(v, -2.0e9, 2.0e9);
    px[k] = static_cast<int>(v);  // truncation towards zero, as int()
  }
  return px;
}

std::vector<PixelBox> pixel_boxes(const std::string& text, int width, int height) {
  std::vector<PixelBox> out;
  for (auto& m : find_refs(text))
    for (auto& b : m.boxes) out.push_back({m.label, scale_box(b, width, height), b});
  return out;
}

}  // namespace dsocr
