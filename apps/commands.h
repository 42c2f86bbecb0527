// The dsocr subcommands; each returns the process exit status and throws on failure.
// Exit status everywhere: 0 success, 1 a failure while working (an input, the model, the device),
// 2 a command line that cannot be understood (unknown option, bad option value, unusable output
// path), checked before any work starts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.h"

namespace dsocr {

// A command line that cannot be understood (exit status 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

// Small option parser: --name VALUE / --name=VALUE / --flag; leftovers are positional. An option
// given twice takes its last value. Values that do not parse or lie outside their range throw
// UsageError naming the option.
class Args {
 public:
  explicit Args(std::vector<std::string> args) : args_(std::move(args)) {}
  bool flag(const std::string& name);
  bool help() { return flag("--help") | flag("-h"); }
  bool given(const std::string& name) const;  // --name or --name=... is on the command line
  std::string value(const std::string& name, const std::string& fallback = {});
  int64_t integer(const std::string& name, int64_t fallback, int64_t lo, int64_t hi);
  double number(const std::string& name, double fallback, double lo, double hi);
  std::vector<std::string> positional();  // what is left; throws UsageError on unknown --options

 private:
  std::vector<std::string> args_;
};

// A library Error from checking an option value, as a usage error naming the option (its message
// prefixed with "OPTION: " unless it already starts with the option).
template <typename F>
auto usage_check(const std::string& option, F&& f) {
  try {
    return f();
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    std::string what = e.what();
    throw UsageError(what.rfind(option, 0) == 0 ? what : option + ": " + what);
  }
}

// Output paths, checked before any work (UsageError naming the option otherwise). A file: its
// folder exists and a file can be created in it (probed with a temporary file), and the path is
// not a folder. A folder: it is one, or can be created below its nearest existing ancestor.
void check_output_file(const std::string& option, const std::string& path);
void check_output_dir(const std::string& option, const std::string& path);

// "dsocr 0.1.0 (git SHA)".
std::string version_line();

int cmd_devices(const std::vector<std::string>& args);
int cmd_warmup(const std::vector<std::string>& args);
int cmd_parity(const std::vector<std::string>& args);
int cmd_ocr(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);
int cmd_tune(const std::vector<std::string>& args);
int cmd_convert(const std::vector<std::string>& args);
int cmd_serve(const std::vector<std::string>& args);
int cmd_version(const std::vector<std::string>& args);

}  // namespace dsocr
