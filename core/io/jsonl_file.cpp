#include "core/io/jsonl_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa::io {

namespace {

// A whole line longer than this is not an event the studio writes; it is cut without trying to parse it.
constexpr off_t kMaxEventLine = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("cannot repair " + path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

std::string repair_jsonl_tail(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return "";
    fail(path, "cannot open it");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, "cannot stat it");
  const off_t size = st.st_size;
  if (size == 0) return "";
  char last = 0;
  if (::pread(fd.get(), &last, 1, size - 1) != 1) fail(path, "cannot read it");
  if (last == '\n') return "";

  // Find where the torn line starts: just after the last newline (or the start of the file).
  off_t line_start = 0;
  std::vector<char> chunk(64 * 1024);
  for (off_t end = size; end > 0 && line_start == 0;) {
    const off_t begin = end > static_cast<off_t>(chunk.size()) ? end - static_cast<off_t>(chunk.size()) : 0;
    const ssize_t n = ::pread(fd.get(), chunk.data(), static_cast<std::size_t>(end - begin), begin);
    if (n != end - begin) fail(path, "cannot read it");
    for (ssize_t i = n - 1; i >= 0; --i)
      if (chunk[static_cast<std::size_t>(i)] == '\n') {
        line_start = begin + i + 1;
        break;
      }
    end = begin;
  }
  const off_t torn = size - line_start;
  std::string tail;
  if (torn <= kMaxEventLine) {
    tail.resize(static_cast<std::size_t>(torn));
    if (::pread(fd.get(), tail.data(), tail.size(), line_start) != static_cast<ssize_t>(tail.size()))
      fail(path, "cannot read it");
    if (try_parse_json_bounded(tail).is_object()) {
      if (::pwrite(fd.get(), "\n", 1, size) != 1) fail(path, "cannot append a newline");
      return "completed the last line of " + path + " (a whole event that lacked its newline)";
    }
  }
  if (::ftruncate(fd.get(), line_start) != 0) fail(path, "cannot cut its torn last line");
  ::fsync(fd.get());
  const std::string shown = tail.empty() ? "" : ": " + json_excerpt(nlohmann::json(tail), 60);
  return "cut a torn last line of " + std::to_string(torn) + " bytes from " + path +
         " (a write interrupted by a full disk or a kill)" + shown;
}

}  // namespace repa::io
