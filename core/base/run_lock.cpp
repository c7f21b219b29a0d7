#include "core/base/run_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa {

namespace fs = std::filesystem;

namespace {

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string read_record(int fd) {
  std::string text;
  char buffer[512];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer), at);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    at += n;
    if (text.size() > 4096) break;  // a record is one short line; anything longer is not ours
  }
  return text;
}

struct Record {
  int64_t pid = 0;
  std::string host, since;
};

std::optional<Record> parse_record(const std::string& text) {
  const auto json = try_parse_json_bounded(text);
  if (!json.is_object() || !json.contains("pid") || !json["pid"].is_number_integer()) return std::nullopt;
  Record r;
  r.pid = json["pid"].get<int64_t>();
  r.host = json.value("host", std::string("?"));
  r.since = json.value("since", std::string("?"));
  return r;
}

std::string describe(const Record& r) {
  return "pid " + std::to_string(r.pid) + " on host " + r.host + " since " + r.since;
}

std::string describe_text(const std::string& text) {
  if (const auto r = parse_record(text)) return describe(*r);
  return "another process (its lock record is unreadable)";
}

bool alive_here(int64_t pid) {
  if (pid <= 0 || pid > INT32_MAX) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

RunLock::RunLock(const std::string& run_dir) : path_((fs::path(run_dir) / kRunLockFile).string()) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError("cannot open the run folder lock " + path_ + ": " + std::strerror(errno));
  bool locked = false, unsupported = false;
  // A few tries: the window probing who holds the folder takes a shared lock for an instant.
  for (int attempt = 0; attempt < 5 && !locked; ++attempt) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
      locked = true;
    } else if (errno == EWOULDBLOCK || errno == EINTR) {
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
    } else {
      unsupported = true;  // e.g. a file system without flock: fall back to the pid in the record
      break;
    }
  }
  const std::string previous = read_record(fd_);
  const auto record = parse_record(previous);
  const std::string host = this_host();
  const bool live_here = record && record->host == host && record->pid != ::getpid() && alive_here(record->pid);
  if (!locked && (!unsupported || live_here)) {
    ::close(fd_);
    fd_ = -1;
    throw InputError("the run folder " + run_dir + " is in use by another worker: " + describe_text(previous) +
                     " (lock " + path_ + "). Stop that worker, or give this run another studio.run_name.");
  }
  if (!previous.empty()) {
    takeover_note_ = record ? "took over the run folder lock of " + describe(*record) +
                                  (record->host == host ? ", a worker that is no longer running"
                                                        : ", a worker that ended without releasing it")
                            : "took over the run folder lock " + path_ + " (a stale, unreadable record)";
  }
  const nlohmann::json mine = {{"pid", static_cast<int64_t>(::getpid())}, {"host", host}, {"since", utc_now()}};
  const std::string text = mine.dump() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw Error("cannot write the run folder lock " + path_ + ": " + why);
  }
  ::fsync(fd_);
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // An empty record says the folder was released cleanly; closing drops the flock.
  [[maybe_unused]] const int cleared = ::ftruncate(fd_, 0);
  ::close(fd_);
}

std::optional<std::string> RunLock::holder(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / kRunLockFile).string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> out;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
  } else if (errno == EWOULDBLOCK) {
    out = describe_text(read_record(fd));
  }
  ::close(fd);
  return out;
}

std::optional<std::string> RunLock::holder_for_config(const std::string& config_path, const std::string& working_dir) {
  std::ifstream in(config_path, std::ios::binary);
  if (!in) return std::nullopt;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto config = try_parse_json_bounded(text);
  if (!config.is_object()) return std::nullopt;
  const auto studio = config.find("studio");
  if (studio == config.end() || !studio->is_object() || !studio->contains("run_name") ||
      !(*studio)["run_name"].is_string() || (*studio)["run_name"].get<std::string>().empty())
    return std::nullopt;
  std::string output = "runs";
  if (config.contains("output_dir") && config["output_dir"].is_string() &&
      !config["output_dir"].get_ref<const std::string&>().empty())
    output = config["output_dir"].get<std::string>();
  fs::path dir = fs::path(output) / (*studio)["run_name"].get<std::string>();
  if (dir.is_relative()) dir = fs::path(working_dir) / dir;
  if (auto who = holder(dir.string())) return *who + " (run folder " + dir.string() + ")";
  return std::nullopt;
}

}  // namespace repa
