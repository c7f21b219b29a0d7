// Downloading a weights file over HTTP(S) with libcurl: resumes a partial download (Range), checks size and
// sha256 when they are known, and renames into place only when the checks pass.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/base/error.h"

namespace repa::encoders {

struct DownloadProgress {
  uint64_t received = 0;  // bytes in the partial file so far, resumed bytes included
  uint64_t total = 0;     // 0 while unknown
};

struct DownloadRequest {
  std::string url;
  std::string destination;           // the final file; the download goes to destination + ".part"
  uint64_t expected_bytes = 0;       // 0: unknown, the size check is skipped with a notice
  std::string expected_sha256;       // "": unknown, the digest check is skipped with a notice
  std::vector<std::string> headers;  // extra request headers ("Authorization: Bearer ..."), not sent on redirects
  std::function<void(const DownloadProgress&)> on_progress;
  std::function<void(const std::string&)> on_notice;  // one-line remarks (resuming, skipped checks)
};

struct DownloadResult {
  uint64_t bytes = 0;
  std::string sha256;
  uint64_t resumed_from = 0;  // bytes already on disk when this download started
  bool size_checked = false;
  bool digest_checked = false;
};

// An HTTP status >= 400; the caller turns 401 / 403 / 404 into advice (a token, a licence, a name to check).
class HttpStatusError : public Error {
 public:
  HttpStatusError(const std::string& what, long status, std::string error_code)
      : Error(what), status_(status), error_code_(std::move(error_code)) {}
  long status() const { return status_; }
  const std::string& error_code() const { return error_code_; }  // the Hub's X-Error-Code header, "" if none

 private:
  long status_;
  std::string error_code_;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased; the last response's after redirects
};

// One GET with the given extra headers, following redirects; the body is read up to max_body bytes (Error past
// that, naming the URL). Throws Error for a network failure; an HTTP error status is returned, not thrown.
HttpResponse http_get(const std::string& url, const std::vector<std::string>& headers, std::size_t max_body);

// Throws repa::Error naming the URL or the file on a network failure (the partial file is kept, so running
// again resumes), on an HTTP error status (HttpStatusError), or on a size or sha256 mismatch (the partial file is
// removed).
DownloadResult download_file(const DownloadRequest& request);

// The partial file used for resuming.
std::string partial_path(const std::string& destination);

}  // namespace repa::encoders
