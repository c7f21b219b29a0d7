// Downloading a weights file over HTTP(S) with libcurl: resumes a partial download (Range), checks size and
// sha256 when they are known, and renames into place only when the checks pass.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace repa::encoders {

struct DownloadProgress {
  uint64_t received = 0;  // bytes in the partial file so far, resumed bytes included
  uint64_t total = 0;     // 0 while unknown
};

struct DownloadRequest {
  std::string url;
  std::string destination;       // the final file; the download goes to destination + ".part"
  uint64_t expected_bytes = 0;   // 0: unknown, the size check is skipped with a notice
  std::string expected_sha256;   // "": unknown, the digest check is skipped with a notice
  std::function<void(const DownloadProgress&)> on_progress;
  std::function<void(const std::string&)> on_notice;  // one-line remarks (resuming, skipped checks)
};

struct DownloadResult {
  uint64_t bytes = 0;
  std::string sha256;
  uint64_t resumed_from = 0;     // bytes already on disk when this download started
  bool size_checked = false;
  bool digest_checked = false;
};

// Throws repa::Error naming the URL or the file on a network failure (the partial file is kept, so running
// again resumes), on an HTTP error status, or on a size or sha256 mismatch (the partial file is removed).
DownloadResult download_file(const DownloadRequest& request);

// The partial file used for resuming.
std::string partial_path(const std::string& destination);

}  // namespace repa::encoders
