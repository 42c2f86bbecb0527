// A corpus larger than one run: inputs listed in a manifest, split into shards that separate
// processes (or machines) take, and each page's output kept in a results folder, written once
// and atomically, so that a run stopped at any point (a crash, a kill, a lost machine) is resumed
// by running it again: the pages whose result is there are skipped, the others run.
#pragma once
#include <string>
#include <vector>

namespace dsocr {

// The inputs a manifest lists, one per line: blank lines and lines starting with # are skipped,
// surrounding spaces trimmed; a relative path is relative to the manifest's folder. Error when
// the file cannot be read or lists nothing.
std::vector<std::string> read_manifest(const std::string& path);

// "I/N": this process takes the inputs whose position (0-based, in the expanded input list:
// folders listed file by file) is I modulo N. Error for anything but 0 <= I < N <= 1,000,000.
struct Shard {
  int index = 0, count = 1;
  bool takes(size_t position) const { return static_cast<int>(position % static_cast<size_t>(count)) == index; }
};
Shard parse_shard(const std::string& spec);

// Each page's output in its own file of a folder: DIR/KEY.pPAGE.EXT, KEY the input's path with
// every byte outside [A-Za-z0-9._-] written as %XX (so that distinct inputs never share a name),
// PAGE the PDF page (0 for an image), EXT txt, md or json. Written to a temporary name and renamed:
// a result file is whole or absent.
class ResultStore {
 public:
  // Creates dir (and its parents); Error when that fails. ext without the dot.
  ResultStore(std::string dir, std::string ext);
  std::string path(const std::string& source, int page) const;
  bool has(const std::string& source, int page) const;
  void write(const std::string& source, int page, const std::string& content) const;  // Error on failure
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, ext_;
};

}  // namespace dsocr
