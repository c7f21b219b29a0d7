// A tiny HTTP/1.1 server on 127.0.0.1 (a port the kernel picks) serving one in-memory file, for testing
// downloads without the internet. It honours "Range: bytes=N-" unless told not to, can cut the first
// response short to simulate a dropped connection, and records the Range header of every request.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace repa::test {

class LocalHttpServer {
 public:
  struct Options {
    std::string path = "/model.safetensors";  // other paths get 404
    bool ranges = true;                        // answer Range requests with 206
    std::size_t drop_first_after = 0;          // > 0: the first response sends this many body bytes, then closes
  };

  LocalHttpServer(std::string body, Options options) : body_(std::move(body)), options_(std::move(options)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 8) != 0)
      throw std::runtime_error("test server: cannot listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~LocalHttpServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }

  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + (path.empty() ? options_.path : path);
  }

  // The Range header of each request so far ("" when none).
  std::vector<std::string> ranges_seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ranges_;
  }

 private:
  void serve() {
    while (!stopping_) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) break;
      handle(fd);
      ::close(fd);
    }
  }

  static void send_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
      const auto n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n <= 0) return;
      data += n, size -= static_cast<std::size_t>(n);
    }
  }

  void handle(int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<std::size_t>(n));
    }
    const auto first_space = request.find(' ');
    const auto path = request.substr(first_space + 1, request.find(' ', first_space + 1) - first_space - 1);
    std::string range;
    const auto at = request.find("\r\nRange: ");
    if (at != std::string::npos) range = request.substr(at + 9, request.find("\r\n", at + 9) - at - 9);
    bool first;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ranges_.push_back(range);
      first = ranges_.size() == 1;
    }
    if (path != options_.path) {
      const std::string page = "no such file";
      const auto head = "HTTP/1.1 404 Not Found\r\nContent-Length: " + std::to_string(page.size()) +
                        "\r\nConnection: close\r\n\r\n";
      send_all(fd, head.data(), head.size());
      send_all(fd, page.data(), page.size());
      return;
    }
    std::size_t from = 0;
    if (options_.ranges && range.rfind("bytes=", 0) == 0) from = std::stoul(range.substr(6));
    std::string head;
    if (from > 0 && from >= body_.size()) {
      head = "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" + std::to_string(body_.size()) +
             "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      send_all(fd, head.data(), head.size());
      return;
    }
    const std::size_t length = body_.size() - from;
    if (from > 0) {
      head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(from) + "-" +
             std::to_string(body_.size() - 1) + "/" + std::to_string(body_.size()) + "\r\n";
    } else {
      head = "HTTP/1.1 200 OK\r\n";
    }
    head += "Content-Length: " + std::to_string(length) + "\r\nConnection: close\r\n\r\n";
    send_all(fd, head.data(), head.size());
    const std::size_t send = first && options_.drop_first_after ? std::min(options_.drop_first_after, length) : length;
    send_all(fd, body_.data() + from, send);
  }

  std::string body_;
  Options options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> ranges_;
};

}  // namespace repa::test
