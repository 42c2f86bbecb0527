// Fuzz target: PNG and JPEG decoding through decode_image (format sniffed from the bytes; libpng
// and libjpeg-turbo behind our wrappers, EXIF orientation included). A decoded image must have
// width * height * 3 bytes.
#include "fuzz/fuzz_util.h"
#include "model/image.h"

using namespace dsocr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  DSOCR_FUZZ_EXPECT_ERRORS({
    RgbImage im = decode_image(bytes, "fuzz.img");
    if (im.width <= 0 || im.height <= 0 || im.rgb.size() != size_t(im.width) * im.height * 3) __builtin_trap();
  });
  return 0;
}
