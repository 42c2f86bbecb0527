#include "model/image.h"

#include <fmt/format.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
// jpeglib.h (with the library's jconfig.h) before jerror.h: the message codes jerror.h numbers
// depend on JPEG_LIB_VERSION, so included first it numbers them for the wrong API on a libjpeg 7/8
// build (Ubuntu's libjpeg-turbo8) and a truncated file is reported as some other message.
#include <jpeglib.h>
// (kept apart so that include sorting does not swap them)
#include <jerror.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include "runtime/error.h"

namespace dsocr {
namespace {

// ---- EXIF ------------------------------------------------------------------------------------
// Orientation tag (0x0112) from a TIFF-structured EXIF block ("II*\0" or "MM\0*"); 1 if absent.
int exif_orientation_tiff(const uint8_t* p, size_t n) {
  if (n < 8) return 1;
  bool le = p[0] == 'I' && p[1] == 'I';
  if (!le && !(p[0] == 'M' && p[1] == 'M')) return 1;
  auto u16 = [&](size_t o) -> uint32_t { return o + 2 > n ? 0 : le ? p[o] | (p[o + 1] << 8) : (p[o] << 8) | p[o + 1]; };
  auto u32 = [&](size_t o) -> uint32_t {
    return o + 4 > n ? 0
           : le      ? p[o] | (p[o + 1] << 8) | (p[o + 2] << 16) | (uint32_t(p[o + 3]) << 24)
                     : (uint32_t(p[o]) << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3];
  };
  size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  uint32_t count = u16(ifd);
  for (uint32_t k = 0; k < count; ++k) {
    size_t e = ifd + 2 + 12 * k;
    if (e + 12 > n) break;
    if (u16(e) == 0x0112) {
      uint32_t v = u16(e + 8);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
    }
  }
  return 1;
}

// ---- PNG -------------------------------------------------------------------------------------
struct PngReader {
  const std::vector<uint8_t>& bytes;
  size_t pos = 8;
};

void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->pos + n > r->bytes.size()) png_error(png, "unexpected end of data (truncated file)");
  std::memcpy(out, r->bytes.data() + r->pos, n);
  r->pos += n;
}

void png_on_error(png_structp png, png_const_charp msg) {
  auto* err = static_cast<std::string*>(png_get_error_ptr(png));
  *err = msg;
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}

RgbImage decode_png(const std::vector<uint8_t>& bytes, const std::string& name) {
  std::string err;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error, png_on_warning);
  if (!png) throw Error("libpng: cannot create a read struct");
  png_infop info = png_create_info_struct(png);
  PngReader reader{bytes};
  RgbImage im;
  std::vector<uint8_t> raw;
  std::vector<png_bytep> rows;
  int orientation = 1;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(fmt::format("{}: corrupt PNG: {}", name, err));
  }
  png_set_read_fn(png, &reader, png_read_mem);
  png_set_sig_bytes(png, 8);
  png_read_info(png, info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0;
  png_get_IHDR(png, info, &w, &h, &depth, &color, nullptr, nullptr, nullptr);
  if (w == 0 || h == 0 || w > 65535 || h > 65535 || uint64_t(w) * h > (1ull << 28)) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(fmt::format("{}: PNG of {}x{} pixels is empty or too large", name, w, h));
  }
  bool grey = !(color & PNG_COLOR_MASK_COLOR);
  bool grey16 = grey && depth == 16 && color != PNG_COLOR_TYPE_PALETTE;
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (grey && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  // tRNS would become an alpha channel; convert("RGB") ignores it.
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  if (depth == 16 && !grey16) png_set_strip_16(png);  // keeps the high byte, as Pillow's RGB;16B unpacker
  if (grey16) png_set_swap(png);                      // host-order 16-bit samples, clipped below
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  int channels = png_get_channels(png, info);
  im.width = static_cast<int>(w);
  im.height = static_cast<int>(h);
  auto to_rgb = [&](const uint8_t* src, uint8_t* o) {
    for (png_uint_32 x = 0; x < w; ++x, o += 3) {
      if (grey16) {
        uint16_t v;
        std::memcpy(&v, src + x * 2 * channels, 2);
        o[0] = o[1] = o[2] = static_cast<uint8_t>(v > 255 ? 255 : v);
      } else if (channels == 1) {
        o[0] = o[1] = o[2] = src[x];
      } else {
        std::memcpy(o, src + x * channels, 3);
      }
    }
  };
  if (passes == 1) {
    // Row by row, the output growing with the rows actually decoded: a small file whose header
    // claims 16k x 16k pixels fails at its end of data, not after allocating gigabytes.
    raw.resize(rowbytes);
    for (png_uint_32 y = 0; y < h; ++y) {
      png_read_row(png, raw.data(), nullptr);
      im.rgb.resize(size_t(y + 1) * w * 3);
      to_rgb(raw.data(), &im.rgb[size_t(y) * w * 3]);
    }
  } else {  // Adam7 needs the whole image in memory
    raw.resize(rowbytes * h);
    rows.resize(h);
    for (png_uint_32 y = 0; y < h; ++y) rows[y] = raw.data() + y * rowbytes;
    png_read_image(png, rows.data());
    im.rgb.resize(size_t(w) * h * 3);
    for (png_uint_32 y = 0; y < h; ++y) to_rgb(rows[y], &im.rgb[size_t(y) * w * 3]);
  }
  png_read_end(png, info);
#ifdef PNG_eXIf_SUPPORTED
  png_uint_32 exif_len = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &exif_len, &exif) && exif) orientation = exif_orientation_tiff(exif, exif_len);
#endif
  png_destroy_read_struct(&png, &info, nullptr);
  return orientation == 1 ? im : apply_orientation(im, orientation);
}

// ---- JPEG ------------------------------------------------------------------------------------
// libjpeg's working memory cap: above it a decode fails ("needs more than ...") instead of
// allocating without bound (a progressive 16k x 16k JPEG needs ~1.5 GiB of coefficients).
constexpr long kJpegMaxMemory = 1l << 30;

struct JpegErr {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
  int code = 0;  // the libjpeg message code that ended the decode
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->msg);
  e->code = cinfo->err->msg_code;
  std::longjmp(e->jump, 1);
}

void jpeg_on_error(j_common_ptr cinfo) { jpeg_fail(cinfo); }

// libjpeg reports damaged data as warnings (level -1) and goes on with grey blocks: those become
// errors. Warnings about metadata that leave the pixels intact are ignored, as Pillow does.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  switch (cinfo->err->msg_code) {
    case JWRN_JFIF_MAJOR:   // unknown JFIF revision
    case JWRN_ADOBE_XFORM:  // unknown Adobe transform code: libjpeg's default colour space applies
      return;
    case JWRN_EXTRANEOUS_DATA:  // junk after the last scan, before EOI: every pixel was decoded
      if (cinfo->err->msg_parm.i[1] == 0xd9) return;
      break;
    default:
      break;
  }
  jpeg_fail(cinfo);
}

// Pillow's reading of a 4-channel JPEG: the samples as inverted CMYK ("CMYK;I", Adobe's
// convention, assumed for every such file; libjpeg has already turned YCCK into CMYK), then its
// CMYK -> RGB conversion: nk = 255 - K, R = nk - nk * C / 255 (rounded as Pillow's MULDIV255).
inline uint8_t pil_cmyk_channel(uint8_t stored_c, uint8_t stored_k) {
  unsigned c = 255u - stored_c, nk = stored_k;  // nk = 255 - K with K = 255 - stored_k
  unsigned t = c * nk + 128;
  return static_cast<uint8_t>(nk - (((t >> 8) + t) >> 8));
}

RgbImage decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegErr err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_on_error;
  err.mgr.emit_message = jpeg_on_message;
  // Everything with a destructor lives before setjmp: a longjmp skips no constructor.
  RgbImage im;
  std::vector<uint8_t> cmyk_row;
  int orientation = 1;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    if (err.code == JWRN_JPEG_EOF)
      throw Error(fmt::format("{}: truncated JPEG: the data ends before the image is complete ({})", name, err.msg));
    if (err.code == JERR_NO_BACKING_STORE || err.code == JERR_OUT_OF_MEMORY)
      throw Error(
          fmt::format("{}: JPEG too large: decoding needs more than {} MiB ({})", name, kJpegMaxMemory >> 20, err.msg));
    throw Error(fmt::format("{}: corrupt JPEG: {}", name, err.msg));
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = kJpegMaxMemory;
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0)
      orientation = exif_orientation_tiff(m->data + 6, m->data_length - 6);
  if (cinfo.image_width == 0 || cinfo.image_height == 0 ||
      uint64_t(cinfo.image_width) * cinfo.image_height > (1ull << 28)) {
    std::string why =
        fmt::format("{}: JPEG of {}x{} pixels is empty or too large", name, cinfo.image_width, cinfo.image_height);
    jpeg_destroy_decompress(&cinfo);
    throw Error(why);
  }
  // CMYK and YCCK (scanners, print workflows): libjpeg gives CMYK, converted below as Pillow does.
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  im.width = static_cast<int>(cinfo.output_width);
  im.height = static_cast<int>(cinfo.output_height);
  if (cmyk) cmyk_row.resize(size_t(im.width) * 4);
  while (cinfo.output_scanline < cinfo.output_height) {
    // the output grows with the rows decoded, so that a truncated file fails before a big allocation
    im.rgb.resize(size_t(cinfo.output_scanline + 1) * im.width * 3);
    uint8_t* out = &im.rgb[size_t(cinfo.output_scanline) * im.width * 3];
    JSAMPROW row = cmyk ? cmyk_row.data() : out;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {  // (only a suspending source does that; ours never)
      jpeg_destroy_decompress(&cinfo);
      throw Error(fmt::format("{}: corrupt JPEG: the decoder stopped before the last row", name));
    }
    if (cmyk)
      for (int x = 0; x < im.width; ++x) {
        const uint8_t* p = &cmyk_row[size_t(x) * 4];
        for (int c = 0; c < 3; ++c) out[x * 3 + c] = pil_cmyk_channel(p[c], p[3]);
      }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return orientation == 1 ? im : apply_orientation(im, orientation);
}

}  // namespace

RgbImage apply_orientation(const RgbImage& im, int o) {
  // Pillow's exif_transpose: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
  // 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90 (rotations counter-clockwise).
  if (o <= 1 || o > 8) return im;
  bool swap = o >= 5;
  RgbImage out;
  out.width = swap ? im.height : im.width;
  out.height = swap ? im.width : im.height;
  out.rgb.resize(im.rgb.size());
  int W = im.width, H = im.height;
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2:
          sx = W - 1 - x;
          break;
        case 3:
          sx = W - 1 - x;
          sy = H - 1 - y;
          break;
        case 4:
          sy = H - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;  // transpose
        case 6:
          sx = y;
          sy = H - 1 - x;
          break;  // rotate 270 (clockwise 90)
        case 7:
          sx = W - 1 - y;
          sy = H - 1 - x;
          break;  // transverse
        case 8:
          sx = W - 1 - y;
          sy = x;
          break;  // rotate 90 counter-clockwise
      }
      std::memcpy(&out.rgb[(size_t(y) * out.width + x) * 3], &im.rgb[(size_t(sy) * W + sx) * 3], 3);
    }
  return out;
}

RgbImage decode_image(const std::vector<uint8_t>& b, const std::string& name) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 8 && std::memcmp(b.data(), png_sig, 8) == 0) return decode_png(b, name);
  if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return decode_jpeg(b, name);
  if (b.empty()) throw Error(fmt::format("{}: empty file", name));
  if (b.size() >= 5 && std::memcmp(b.data(), "%PDF-", 5) == 0)
    throw Error(fmt::format("{}: a PDF, not an image (PDF pages are rendered by `dsocr ocr`)", name));
  throw Error(fmt::format("{}: unsupported image format (PNG and JPEG are supported)", name));
}

RgbImage load_image(const std::string& path) {
  std::vector<uint8_t> bytes;
  if (path == "-") {
    bytes.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("cannot open image {}: {}", path, std::strerror(errno)));
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return decode_image(bytes, path == "-" ? "<stdin>" : path);
}

}  // namespace dsocr
