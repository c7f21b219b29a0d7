#include "core/encoders/weight_download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>

#include "core/base/error.h"
#include "core/encoders/sha256.h"

namespace repa::encoders {

namespace fs = std::filesystem;

namespace {

void ensure_curl_initialised() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* curl = nullptr;
  std::FILE* out = nullptr;
  std::string part;
  uint64_t offset = 0;     // bytes on disk before this request
  uint64_t written = 0;    // bytes written by this request
  bool decided = false;    // whether the response status has been looked at
  bool restarted = false;  // the server ignored the Range and sent the whole file
  long status = 0;
  std::string error_body;  // first bytes of an error response, for the message
  const DownloadRequest* request = nullptr;
  uint64_t content_length = 0;
  std::map<std::string, std::string> headers;  // of the last response (a redirect's are replaced)
};

// Collects "Name: value" header lines, lower-casing names; a new status line (a redirect's target) starts afresh.
void record_header(std::map<std::string, std::string>& headers, const char* data, size_t n) {
  std::string line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    headers.clear();
    return;
  }
  const auto colon = line.find(':');
  if (colon == std::string::npos) return;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  auto value = line.substr(colon + 1);
  value.erase(0, std::min(value.find_first_not_of(' '), value.size()));
  headers[name] = value;
}

size_t on_download_header(char* data, size_t size, size_t count, void* user) {
  record_header(static_cast<Transfer*>(user)->headers, data, size * count);
  return size * count;
}

// A curl header list freed with its owner.
struct HeaderList {
  curl_slist* list = nullptr;
  explicit HeaderList(const std::vector<std::string>& lines) {
    for (const auto& l : lines) list = curl_slist_append(list, l.c_str());
  }
  ~HeaderList() { curl_slist_free_all(list); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
};

// Called with each piece of the body. The first call decides, from the status, whether the bytes continue
// the partial file (206), replace it (200), or are an error page (>= 400).
size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!t.decided) {
    t.decided = true;
    curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.status);
    if (t.status == 200 && t.offset > 0) {
      // No range support: start over.
      std::fclose(t.out);
      t.out = std::fopen(t.part.c_str(), "wb");
      if (!t.out) return 0;
      t.restarted = true;
      t.offset = 0;
    }
    curl_off_t length = -1;
    curl_easy_getinfo(t.curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (length >= 0) t.content_length = static_cast<uint64_t>(length);
  }
  if (t.status >= 400) {
    if (t.error_body.size() < 200) t.error_body.append(data, std::min<size_t>(n, 200 - t.error_body.size()));
    return n;
  }
  if (std::fwrite(data, 1, n, t.out) != n) return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  t.written += n;
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto& t = *static_cast<Transfer*>(user);
  if (t.request->on_progress && t.status < 400) {
    DownloadProgress p;
    p.received = t.offset + t.written;
    p.total =
        t.request->expected_bytes ? t.request->expected_bytes : (t.content_length ? t.offset + t.content_length : 0);
    t.request->on_progress(p);
  }
  return 0;
}

void notice(const DownloadRequest& r, const std::string& text) {
  if (r.on_notice) r.on_notice(text);
}

uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

struct TextTransfer {
  HttpResponse response;
  std::size_t max_body = 0;
  bool too_large = false;
};

size_t on_text_body(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<TextTransfer*>(user);
  const size_t n = size * count;
  if (t.response.body.size() + n > t.max_body) {
    t.too_large = true;
    return 0;
  }
  t.response.body.append(data, n);
  return n;
}

size_t on_text_header(char* data, size_t size, size_t count, void* user) {
  record_header(static_cast<TextTransfer*>(user)->response.headers, data, size * count);
  return size * count;
}

}  // namespace

HttpResponse http_get(const std::string& url, const std::vector<std::string>& headers, std::size_t max_body) {
  ensure_curl_initialised();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw Error("libcurl could not start a transfer for " + url);
  TextTransfer t;
  t.max_body = max_body;
  char error[CURL_ERROR_SIZE] = {0};
  HeaderList header_list(headers);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "repa-studio");
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_text_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, on_text_header);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &t);
  if (header_list.list) curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, header_list.list);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 300L);
  const CURLcode code = curl_easy_perform(curl.get());
  if (t.too_large) throw Error("the answer of " + url + " is larger than " + std::to_string(max_body) + " bytes");
  if (code != CURLE_OK)
    throw Error("request to " + url + " failed: " + (error[0] ? std::string(error) : curl_easy_strerror(code)));
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &t.response.status);
  return t.response;
}

std::string partial_path(const std::string& destination) {
  return destination + ".part";
}

DownloadResult download_file(const DownloadRequest& request) {
  ensure_curl_initialised();
  const auto part = partial_path(request.destination);
  const auto parent = fs::path(request.destination).parent_path();
  if (!parent.empty()) fs::create_directories(parent);

  DownloadResult result;
  Transfer t;
  t.request = &request;
  t.part = part;
  t.offset = file_size_or_zero(part);
  if (request.expected_bytes && t.offset > request.expected_bytes) {
    notice(request, "partial file " + part + " is larger than the expected " + std::to_string(request.expected_bytes) +
                        " bytes; starting over");
    t.offset = 0;
  }
  result.resumed_from = t.offset;
  const bool already_complete = request.expected_bytes && t.offset == request.expected_bytes;

  if (!already_complete) {
    if (t.offset > 0) notice(request, "resuming " + part + " from byte " + std::to_string(t.offset));
    t.out = std::fopen(part.c_str(), t.offset > 0 ? "ab" : "wb");
    if (!t.out) throw InputError("cannot write " + part);
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw Error("libcurl could not start a transfer for " + request.url);
    t.curl = curl.get();
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(t.curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(t.curl, CURLOPT_FOLLOWLOCATION, 1L);  // the Hub redirects to its file store
    curl_easy_setopt(t.curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(t.curl, CURLOPT_USERAGENT, "repa-studio");
    curl_easy_setopt(t.curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(t.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(t.curl, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_HEADERFUNCTION, on_download_header);
    curl_easy_setopt(t.curl, CURLOPT_HEADERDATA, &t);
    // curl keeps custom headers (the token) off a redirect to another host, such as the Hub's file store.
    HeaderList header_list(request.headers);
    if (header_list.list) curl_easy_setopt(t.curl, CURLOPT_HTTPHEADER, header_list.list);
    curl_easy_setopt(t.curl, CURLOPT_CONNECTTIMEOUT, 30L);
    // Give up on a stalled connection (under 1 KB/s for a minute) rather than hang; the next run resumes.
    curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_TIME, 60L);
    // A plain Range (not RESUME_FROM, which fails on servers without ranges): a 200 reply restarts the file.
    const std::string range = std::to_string(t.offset) + "-";
    if (t.offset > 0) curl_easy_setopt(t.curl, CURLOPT_RANGE, range.c_str());
    const CURLcode code = curl_easy_perform(t.curl);
    if (!t.decided) curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.status);
    if (t.out) std::fclose(t.out);
    t.out = nullptr;

    const uint64_t on_disk = file_size_or_zero(part);
    if (t.status == 416 && request.expected_bytes == 0 && t.offset > 0) {
      // Range past the end: the partial file already holds everything the server has.
      notice(request, "server reports " + part + " complete at " + std::to_string(on_disk) + " bytes");
    } else if (t.status >= 400) {
      if (t.status == 416) fs::remove(part);
      const auto code_header = t.headers.find("x-error-code");
      throw HttpStatusError("download of " + request.url + " failed: HTTP " + std::to_string(t.status) +
                                (t.error_body.empty() || t.error_body[0] == '<'  // an HTML page says nothing in a line
                                     ? ""
                                     : " (" + t.error_body.substr(0, t.error_body.find('\n')) + ")"),
                            t.status, code_header == t.headers.end() ? "" : code_header->second);
    } else if (code != CURLE_OK) {
      throw Error("download of " + request.url + " interrupted after " + std::to_string(on_disk) +
                  " bytes: " + (error[0] ? std::string(error) : curl_easy_strerror(code)) + "; " + part +
                  " is kept, run the same command again to resume");
    }
    if (t.restarted) notice(request, "the server does not resume downloads; fetched the whole file again");
  }

  result.bytes = file_size_or_zero(part);
  if (request.expected_bytes) {
    result.size_checked = true;
    if (result.bytes != request.expected_bytes) {
      if (result.bytes > request.expected_bytes) fs::remove(part);
      throw Error("download of " + request.url + " gave " + std::to_string(result.bytes) + " bytes in " + part +
                  " but " + std::to_string(request.expected_bytes) + " were expected" +
                  (result.bytes < request.expected_bytes ? "; run the same command again to resume" : ""));
    }
  } else {
    notice(request, "the expected size of " + request.destination + " is not recorded; size check skipped");
  }

  result.sha256 = sha256_file(part);
  if (!request.expected_sha256.empty()) {
    result.digest_checked = true;
    if (result.sha256 != request.expected_sha256) {
      fs::remove(part);
      throw Error("sha256 mismatch for " + request.url + ": expected " + request.expected_sha256 + ", got " +
                  result.sha256 + "; the download was removed, run the same command to fetch it again");
    }
  } else {
    notice(request, "the sha256 of " + request.destination + " is not recorded; digest check skipped (got " +
                        result.sha256 + ")");
  }

  sync_file(part);
  std::error_code ec;
  fs::rename(part, request.destination, ec);
  if (ec) throw Error("cannot move " + part + " to " + request.destination + ": " + ec.message());
  return result;
}

}  // namespace repa::encoders
