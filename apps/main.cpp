// dsocr: DeepSeek-OCR on OpenCL. Subcommands: devices, warmup, parity, ocr, serve, bench, tune, convert;
// --version.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "runtime/error.h"

namespace {

void usage(std::FILE* f) {
  std::fputs(
      "usage: dsocr <command> [options]       dsocr <command> --help: that command's options\n"
      "       dsocr --version                 version, git commit, OpenCL platforms found\n"
      "\n"
      "commands:\n"
      "  devices [--tags]         list OpenCL devices (--tags: one platform tag per line)\n"
      "  warmup [--device SPEC]   compile every kernel into the program cache, print cache hits/misses\n"
      "  parity CASE.h5 [...] [--device SPEC] [--verbose]\n"
      "                           run golden cases and compare (exit 0 pass, 1 fail, 2 cannot run)\n"
      "  ocr INPUT... [options]   images and PDF pages to text, markdown or JSON (dsocr ocr --help)\n"
      "  serve [--host H] [--port P] [--model M] [--api-key KEY] [options]\n"
      "                           OpenAI-compatible HTTP server: /v1/chat/completions, /v1/models, /health\n"
      "                           (dsocr serve --help)\n"
      "  bench [peak|kernels|model|all] [--device SPEC] [--runs N] [--small] [--only NAME]\n"
      "        [--weights bf16|fp16|int8|int4|f32] [--json F] [--csv F]\n"
      "                           benchmarks against the device's measured copy and SGEMM peaks\n"
      "  bench quality --model DIR --image F [--tokens N]\n"
      "                           each weight storage's logits against f32 (error, greedy agreement)\n"
      "  convert --weights int8|int4|fp16 SRC DST\n"
      "                           write a checkpoint in a compact storage once (later loads skip it)\n"
      "  tune [--device SPEC] [--size N] [--fraction F] [--all]\n"
      "                           tune CLBlast's SGEMM for the device (CLBlast's auto-tuner; minutes on a\n"
      "                           GPU); stored beside the program cache and applied by every later run\n"
      "\n"
      "device selection: --device NAME[:INDEX] or $DSOCR_DEVICE (platform or device name substring,\n"
      "e.g. pocl, rusticl, nvidia); default: the first GPU, else the first device.\n"
      "rusticl lists devices only with RUSTICL_ENABLE set (e.g. RUSTICL_ENABLE=llvmpipe).\n"
      "\n"
      "exit status: 0 success, 1 a failure while working (an input, the model, the device),\n"
      "2 a command line that cannot be understood (unknown option, bad value, unusable output path).\n",
      f);
}

int dispatch(const std::string& cmd, const std::vector<std::string>& args) {
  if (cmd == "devices") return dsocr::cmd_devices(args);
  if (cmd == "warmup") return dsocr::cmd_warmup(args);
  if (cmd == "parity") return dsocr::cmd_parity(args);
  if (cmd == "ocr") return dsocr::cmd_ocr(args);
  if (cmd == "serve") return dsocr::cmd_serve(args);
  if (cmd == "bench") return dsocr::cmd_bench(args);
  if (cmd == "tune") return dsocr::cmd_tune(args);
  if (cmd == "convert") return dsocr::cmd_convert(args);
  if (cmd == "--version" || cmd == "version") return dsocr::cmd_version(args);
  std::fprintf(stderr, "dsocr: unknown command '%s'\n\n", cmd.c_str());
  usage(stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    usage(args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  try {
    return dispatch(cmd, args);
  } catch (const dsocr::UsageError& e) {
    std::fprintf(stderr, "dsocr %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsocr %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
