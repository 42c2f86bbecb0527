// Writes ycck.jpg: a 23x13 YCCK JPEG (Adobe marker, transform 2) as scanner and print software
// produce them, which Pillow cannot write. Its CMYK samples are stored inverted (Adobe's
// convention) from the same pattern make_images.py uses. Not part of the build:
//   g++ -O1 -o /tmp/make_ycck tests/data/images/make_ycck.cpp -ljpeg && /tmp/make_ycck tests/data/images/ycck.jpg
#include <cstddef>
#include <cstdio>
#include <vector>
// clang-format off
#include <jpeglib.h>  // after <cstdio>: it uses size_t and FILE
// clang-format on

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const int w = 23, h = 13;
  std::vector<unsigned char> px(w * h * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      unsigned char* p = &px[(y * w + x) * 4];
      // C, M, Y, K as make_images.py's pattern(), then inverted as Adobe stores them
      p[0] = 255 - (x * 11) % 256;
      p[1] = 255 - (y * 19) % 256;
      p[2] = 255 - ((x + y) * 7) % 256;
      p[3] = 255 - (x * y * 3) % 200;
    }
  FILE* f = std::fopen(argv[1], "wb");
  if (!f) return 1;
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, JCS_YCCK);  // writes the Adobe marker with transform 2
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = &px[c.next_scanline * w * 4];
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
  return 0;
}
