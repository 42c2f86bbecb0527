// The dsocr subcommands; each returns the process exit status and throws on failure.
#pragma once
#include <string>
#include <vector>

#include "runtime/error.h"

namespace dsocr {

// A command line that cannot be understood (exit status 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

// Small option parser: --name VALUE / --name=VALUE / --flag; leftovers are positional.
class Args {
 public:
  explicit Args(std::vector<std::string> args) : args_(std::move(args)) {}
  bool flag(const std::string& name);
  std::string value(const std::string& name, const std::string& fallback = {});
  std::vector<std::string> positional();  // what is left; throws UsageError on unknown --options

 private:
  std::vector<std::string> args_;
};

int cmd_devices(const std::vector<std::string>& args);
int cmd_warmup(const std::vector<std::string>& args);
int cmd_parity(const std::vector<std::string>& args);
int cmd_ocr(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int cmd_tune(const std::vector<std::string>& args);

}  // namespace dsocr
