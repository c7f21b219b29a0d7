// Small helpers shared by the core tests: scratch folders and paths into the repository.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace repa::test {

// A fresh, empty folder under the system temp dir, removed when the object goes away.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag = "repa-test");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::string source_path(const std::string& relative);  // inside the repository
std::string fixture_path(const std::string& relative);  // inside tests/fixtures (the reference fixtures)
void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);

// The message of the InputError `f` throws, or "" when it throws none (other exceptions propagate).
std::string error_of(const std::function<void()>& f);
bool contains(const std::string& text, const std::string& part);

}  // namespace repa::test
