// A fake Hugging Face Hub on 127.0.0.1 (a port the kernel picks) for testing `repa-train fetch OWNER/NAME` without
// the internet: the model API (/api/models/R/revision/REV, siblings with size and LFS sha256 as ?blobs=true gives
// them) and /R/resolve/REV/PATH with Range support. A gated repo answers 401 without a token and 403 with a token
// other than the accepted one, as the Hub does; unknown repos, revisions and files answer 404 with X-Error-Code.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/encoders/sha256.h"

namespace repa::test {

class FakeHubServer {
 public:
  struct Repo {
    std::map<std::string, std::string> files;  // repo path → content
    std::string commit = "0123456789abcdef0123456789abcdef01234567";
    bool gated = false;
    std::size_t lfs_threshold = 64;  // files this large or larger are LFS files (a sha256 in the listing)
  };
  struct Request {
    std::string path, range, authorization;
  };

  FakeHubServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0)
      throw std::runtime_error("fake hub: cannot listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~FakeHubServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void add_repo(const std::string& id, Repo repo) {
    std::lock_guard<std::mutex> lock(mutex_);
    repos_[id] = std::move(repo);
  }
  // The token a gated repo accepts.
  void set_accepted_token(const std::string& token) {
    std::lock_guard<std::mutex> lock(mutex_);
    accepted_token_ = token;
  }
  // The next download of `path` (a repo path) sends this many bytes, then closes the connection.
  void drop_next_download(const std::string& path, std::size_t after) {
    std::lock_guard<std::mutex> lock(mutex_);
    drops_[path] = after;
  }
  // A wrong listing for `path`: the API reports this sha256 (a corrupted upload, or a tampered mirror).
  void misreport_sha256(const std::string& path, const std::string& sha256) {
    std::lock_guard<std::mutex> lock(mutex_);
    fake_digests_[path] = sha256;
  }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  void clear_requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.clear();
  }

  static std::string sha256_of(const std::string& bytes) {
    encoders::Sha256 h;
    h.update(bytes);
    return h.hex_digest();
  }

 private:
  void serve() {
    while (true) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) break;
      handle(fd);
      ::close(fd);
    }
  }

  static void send_all(int fd, const std::string& data, std::size_t size) {
    std::size_t at = 0;
    while (at < size) {
      const auto n = ::send(fd, data.data() + at, size - at, MSG_NOSIGNAL);
      if (n <= 0) return;
      at += static_cast<std::size_t>(n);
    }
  }

  static void reply(int fd, const std::string& status, const std::string& body, const std::string& extra = "") {
    const auto head = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
                      "Connection: close\r\n\r\n";
    send_all(fd, head, head.size());
    send_all(fd, body, body.size());
  }

  static std::string header(const std::string& request, const std::string& name) {
    const auto at = request.find("\r\n" + name + ": ");
    if (at == std::string::npos) return "";
    const auto from = at + 4 + name.size();
    return request.substr(from, request.find("\r\n", from) - from);
  }

  static std::string decode(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  // "owner/name/<kind>/<revision>/<rest>" with the revision percent-decoded.
  static bool split_repo_path(const std::string& path, const std::string& kind, std::string& repo,
                              std::string& revision, std::string& rest) {
    const auto first = path.find('/');
    if (first == std::string::npos) return false;
    const auto second = path.find('/', first + 1);
    if (second == std::string::npos || path.compare(second, kind.size() + 2, "/" + kind + "/") != 0) return false;
    repo = path.substr(0, second);
    const auto rev_start = second + kind.size() + 2;
    const auto rev_end = path.find('/', rev_start);
    revision = decode(path.substr(rev_start, rev_end == std::string::npos ? std::string::npos : rev_end - rev_start));
    rest = rev_end == std::string::npos ? "" : decode(path.substr(rev_end + 1));
    return true;
  }

  void handle(int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<std::size_t>(n));
    }
    const auto sp = request.find(' ');
    std::string target = request.substr(sp + 1, request.find(' ', sp + 1) - sp - 1);
    const auto auth = header(request, "Authorization");
    const auto range = header(request, "Range");
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back({target, range, auth});
    const auto query = target.find('?');
    const std::string path = target.substr(1, query == std::string::npos ? std::string::npos : query - 1);
    std::string repo_id, revision, rest;
    const bool api =
        path.rfind("api/models/", 0) == 0 && split_repo_path(path.substr(11), "revision", repo_id, revision, rest);
    const bool file = !api && split_repo_path(path, "resolve", repo_id, revision, rest);
    const auto it = repos_.find(repo_id);
    if ((!api && !file) || it == repos_.end())
      return reply(fd, "404 Not Found", "{\"error\":\"Repository Not Found\"}", "X-Error-Code: RepoNotFound\r\n");
    const Repo& repo = it->second;
    if (repo.gated) {
      if (auth.empty())
        return reply(fd, "401 Unauthorized", "{\"error\":\"Access to model is restricted\"}",
                     "X-Error-Code: GatedRepo\r\n");
      if (auth != "Bearer " + accepted_token_)
        return reply(fd, "403 Forbidden", "{\"error\":\"Access to model is restricted\"}",
                     "X-Error-Code: GatedRepo\r\n");
    }
    if (revision != "main" && revision != repo.commit)
      return reply(fd, "404 Not Found", "{\"error\":\"Revision Not Found\"}", "X-Error-Code: RevisionNotFound\r\n");
    if (api) {
      nlohmann::json siblings = nlohmann::json::array();
      for (const auto& f : repo.files) {
        nlohmann::json s = {{"rfilename", f.first}, {"size", f.second.size()}, {"blobId", "b"}};
        if (f.second.size() >= repo.lfs_threshold) {
          const auto fake = fake_digests_.find(f.first);
          s["lfs"] = {{"sha256", fake != fake_digests_.end() ? fake->second : sha256_of(f.second)},
                      {"size", f.second.size()},
                      {"pointerSize", 134}};
        }
        siblings.push_back(s);
      }
      return reply(fd, "200 OK", nlohmann::json{{"id", repo_id}, {"sha", repo.commit}, {"siblings", siblings}}.dump(),
                   "Content-Type: application/json\r\n");
    }
    const auto f = repo.files.find(rest);
    if (f == repo.files.end())
      return reply(fd, "404 Not Found", "{\"error\":\"Entry not found\"}", "X-Error-Code: EntryNotFound\r\n");
    const std::string& body = f->second;
    std::size_t from = 0;
    if (range.rfind("bytes=", 0) == 0) from = std::stoul(range.substr(6));
    if (from > 0 && from >= body.size())
      return reply(fd, "416 Range Not Satisfiable", "",
                   "Content-Range: bytes */" + std::to_string(body.size()) + "\r\n");
    std::string head = from > 0 ? "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(from) + "-" +
                                      std::to_string(body.size() - 1) + "/" + std::to_string(body.size()) + "\r\n"
                                : "HTTP/1.1 200 OK\r\n";
    head += "Content-Length: " + std::to_string(body.size() - from) + "\r\nConnection: close\r\n\r\n";
    send_all(fd, head, head.size());
    std::size_t send = body.size() - from;
    const auto drop = drops_.find(rest);
    if (drop != drops_.end()) {
      send = std::min(send, drop->second);
      drops_.erase(drop);
    }
    send_all(fd, body.substr(from), send);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::string, Repo> repos_;
  std::map<std::string, std::size_t> drops_;
  std::map<std::string, std::string> fake_digests_;
  std::string accepted_token_;
  std::vector<Request> requests_;
};

}  // namespace repa::test
