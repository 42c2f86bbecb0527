// ocr/corpus.h without a device: manifests (comments, blank lines, relative paths), shards, and
// the result files' names (escaping, long paths) and atomic writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "ocr/corpus.h"
#include "runtime/error.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {
struct Tmp {
  fs::path dir;
  Tmp() {
    std::string t = (fs::temp_directory_path() / "dsocr-test-corpus-XXXXXX").string();
    dir = mkdtemp(t.data());
  }
  ~Tmp() { fs::remove_all(dir); }
};
}  // namespace

TEST(corpus, manifest_lines) {
  Tmp t;
  std::ofstream(t.dir / "list.txt") << "# comment\n\n  a.png \nsub/b.pdf\r\n/abs/c.jpg\n-\n   # indented comment\n";
  const auto got = read_manifest((t.dir / "list.txt").string());
  const std::vector<std::string> want = {(t.dir / "a.png").string(), (t.dir / "sub/b.pdf").string(), "/abs/c.jpg", "-"};
  EXPECT_EQ(got, want);
  std::ofstream(t.dir / "empty.txt") << "# nothing\n \n";
  EXPECT_THROW(read_manifest((t.dir / "empty.txt").string()), Error);
  EXPECT_THROW(read_manifest((t.dir / "none.txt").string()), Error);
}

TEST(corpus, shards_partition_the_positions) {
  const Shard s = parse_shard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  std::vector<int> owners(23, -1);
  for (int i = 0; i < 3; ++i) {
    const Shard si = parse_shard(std::to_string(i) + "/3");
    for (size_t p = 0; p < owners.size(); ++p)
      if (si.takes(p)) {
        EXPECT_EQ(owners[p], -1) << "position " << p << " taken twice";
        owners[p] = i;
      }
  }
  for (int o : owners) EXPECT_NE(o, -1);
  for (const char* bad : {"3/3", "-1/2", "1/0", "x", "1", "1/", "/2", "1/2/3", " 1/2", "0/1000001"})
    EXPECT_THROW(parse_shard(bad), Error) << bad;
  EXPECT_NO_THROW(parse_shard("0/1"));
}

TEST(corpus, result_names_are_distinct_and_writes_whole) {
  Tmp t;
  ResultStore r((t.dir / "out").string(), "md");
  EXPECT_EQ(fs::path(r.path("scans/a b.pdf", 3)).filename().string(), "scans%2Fa%20b.pdf.p3.md");
  EXPECT_NE(r.path("a/b.png", 0), r.path("a%2Fb.png", 0));  // '%' is escaped too
  std::set<std::string> names;
  const std::string long_dir(300, 'd');
  for (const std::string& src : {long_dir + "/x.png", long_dir + "/y.png", "/" + long_dir + "/x.png"}) {
    const std::string name = fs::path(r.path(src, 0)).filename().string();
    EXPECT_LE(name.size(), 255u);
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 3u);  // a hash of the whole path keeps long names apart
  EXPECT_FALSE(r.has("a.png", 0));
  r.write("a.png", 0, "page text\n");
  EXPECT_TRUE(r.has("a.png", 0));
  std::ifstream in(r.path("a.png", 0));
  std::string back((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(back, "page text\n");
  for (auto& e : fs::directory_iterator(t.dir / "out"))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  std::ofstream(t.dir / "file") << "x";
  EXPECT_THROW(ResultStore((t.dir / "file").string(), "md"), Error);
}
