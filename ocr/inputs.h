// Input discovery: PNG, JPEG and PDF by content, folders, standard input, page selections.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsocr {

enum class InputKind { png, jpeg, pdf, unsupported };
// From the leading bytes; `what` (optional) names an unsupported format when it is recognised.
InputKind sniff_format(const std::vector<uint8_t>& head, std::string* what = nullptr);
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes = 0);  // "-" = stdin; 0 = all

// Expands the command line's inputs: files as given, "-" as is, a folder as its PNG, JPEG and PDF
// files (by extension, case-insensitive), sorted by name, not recursive. An argument that gives
// no file (a path that does not exist, a folder that cannot be listed or holds no such file)
// becomes one entry with `error` set, in its place, so that the others still run.
struct InputPath {
  std::string path;
  std::string error;  // why this argument gives no input ("" when it is one)
};
std::vector<InputPath> expand_inputs(const std::vector<std::string>& args);

// Page selection "1-5", "3", "2,4,7-", "-3" (1-based) for a document of n pages: the selected
// pages in increasing order, without repeats; pages past the end are dropped (*dropped counts
// them). Throws Error for a malformed spec.
std::vector<int> parse_pages(const std::string& spec, int n_pages, int* dropped = nullptr);
void check_pages_spec(const std::string& spec);  // the syntax only

}  // namespace dsocr
