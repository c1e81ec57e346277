// Helpers of tests/apps/conformance_test.cpp: the conformance program run
// as a child process, and a blocking raw TCP client (for framing rules no
// well-behaved client would break) with an HTTP response reader and a
// WebSocket frame reader/writer. Every read is bounded by a timeout, so a
// server that hangs fails the test instead of stalling it. Blocking: use
// from the test's thread, outside coroutines.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace conformance_test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// The conformance program, started with `args`; its first line of stdout
/// gives the port, and a thread drains the rest (whatever comes must not fill
/// the pipe). stderr (the logs) goes to /dev/null. The destructor SIGKILLs a child that is still running.
class ServerProcess {
 public:
  ServerProcess(const std::string& program, const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> argv = {program};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    int rc = posix_spawn(&pid_, program.c_str(), &actions, nullptr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      pid_ = -1;
      ::close(fds[0]);
      return;
    }
    out_fd_ = fds[0];
    port_ = read_port_line(std::chrono::seconds(10));
    drain_ = std::thread([fd = out_fd_] {
      char buf[4096];
      while (true) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        break;
      }
    });
  }
  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (drain_.joinable()) drain_.join();
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  /// The port of the "listening on 127.0.0.1:<port>" line, 0 if none came.
  int port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  const std::string& first_line() const noexcept { return line_; }

  /// Sends `signo` and waits up to `limit` for the exit; the exit status
  /// (minus the signal number if killed by one), or nullopt on timeout.
  std::optional<int> signal_and_wait(int signo, Clock::duration limit) {
    ::kill(pid_, signo);
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      // Polling a child's exit: no fd to wait on without installing a
      // SIGCHLD handler in the test process.
      std::this_thread::sleep_for(milliseconds(10));
    }
    return std::nullopt;
  }

 private:
  int read_port_line(Clock::duration limit) {
    auto deadline = Clock::now() + limit;
    while (line_.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return 0;
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char c;
      ssize_t n = ::read(out_fd_, &c, 1);  // byte by byte: the rest belongs to the drain thread
      if (n <= 0) return 0;
      line_.push_back(c);
    }
    line_.pop_back();
    constexpr std::string_view kPrefix = "listening on 127.0.0.1:";
    if (line_.rfind(kPrefix, 0) != 0) return 0;
    return std::atoi(line_.c_str() + kPrefix.size());
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  bool exited_ = false;
  std::string line_;
  std::thread drain_;
};

/// A parsed HTTP response read from a raw connection.
struct RawResponse {
  int code = 0;
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool chunked = false;

  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return std::nullopt;
  }
  int count(std::string_view name) const {
    int n = 0;
    for (const auto& h : headers) n += h.first == name;
    return n;
  }
};

/// A blocking TCP connection to 127.0.0.1:port with bounded reads.
class RawConnection {
 public:
  explicit RawConnection(int port, milliseconds timeout = milliseconds(5000)) : timeout_(timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    int one = 1;
    if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const noexcept { return fd_ >= 0; }

  /// Sends everything; false if the peer is gone.
  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Closes with an RST instead of a FIN (a client that vanishes).
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }

  /// Reads more into the buffer; false on EOF, error or timeout.
  bool fill(milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (r <= 0) {
      timed_out_ = r == 0;
      return false;
    }
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  /// Waits until `n` bytes are buffered (false on EOF or timeout).
  bool need(std::size_t n) {
    auto deadline = Clock::now() + timeout_;
    while (buffer_.size() < n) {
      if (!fill(left(deadline))) return false;
    }
    return true;
  }

  /// Reads up to and including `delimiter` (nullopt on EOF or timeout).
  std::optional<std::string> read_until(std::string_view delimiter) {
    auto deadline = Clock::now() + timeout_;
    std::size_t pos;
    while ((pos = buffer_.find(delimiter)) == std::string::npos) {
      if (!fill(left(deadline))) return std::nullopt;
    }
    return take(pos + delimiter.size());
  }

  std::string take(std::size_t n) {
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  /// Reads one response. `head_request`: no body follows (HEAD).
  std::optional<RawResponse> read_response(bool head_request = false) {
    auto head = read_until("\r\n\r\n");
    if (!head) return std::nullopt;
    RawResponse r;
    std::string_view h = *head;
    std::size_t eol = h.find("\r\n");
    r.status_line = std::string(h.substr(0, eol));
    if (r.status_line.size() >= 12) r.code = std::atoi(r.status_line.c_str() + 9);
    h.remove_prefix(eol + 2);
    while (h.size() > 2) {
      eol = h.find("\r\n");
      std::string_view line = h.substr(0, eol);
      h.remove_prefix(eol + 2);
      std::size_t colon = line.find(':');
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      r.headers.emplace_back(name, std::string(value));
    }
    if (head_request || r.code / 100 == 1 || r.code == 204 || r.code == 304) return r;
    if (auto te = r.header("transfer-encoding"); te && te->find("chunked") != std::string::npos) {
      r.chunked = true;
      while (true) {
        auto size_line = read_until("\r\n");
        if (!size_line) return std::nullopt;
        std::size_t size = std::stoul(*size_line, nullptr, 16);
        if (size == 0) {
          if (!read_until("\r\n")) return std::nullopt;  // no trailers from this server
          break;
        }
        if (!need(size + 2)) return std::nullopt;
        r.body += take(size);
        take(2);
      }
    } else if (auto length = r.header("content-length")) {
      std::size_t n = std::stoul(*length);
      if (!need(n)) return std::nullopt;
      r.body = take(n);
    } else {
      read_to_close();
      r.body = take(buffer_.size());
    }
    return r;
  }

  /// Reads until the peer closes; true if it did within the timeout.
  bool read_to_close(std::optional<milliseconds> limit = std::nullopt) {
    auto deadline = Clock::now() + limit.value_or(timeout_);
    while (fill(left(deadline))) {
    }
    return eof_;
  }

  /// True if nothing arrives and the peer does not close within `wait`.
  bool quiet_for(milliseconds wait) {
    std::size_t before = buffer_.size();
    fill(wait);
    return !eof_ && buffer_.size() == before;
  }

  std::string& buffer() noexcept { return buffer_; }
  bool eof() const noexcept { return eof_; }

 private:
  static milliseconds left(Clock::time_point deadline) {
    auto ms = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    return ms.count() > 0 ? ms : milliseconds(0);
  }

  int fd_ = -1;
  milliseconds timeout_;
  std::string buffer_;
  bool eof_ = false;
  bool timed_out_ = false;
};

/// Sends `request` on a new connection and reads one response.
inline std::optional<RawResponse> raw_request(int port, std::string_view request, bool head_request = false) {
  RawConnection c(port);
  if (!c.send(request)) return std::nullopt;
  return c.read_response(head_request);
}

/// A WebSocket frame as read from the server.
struct Frame {
  bool fin = true;
  int rsv = 0;
  int opcode = 0;
  std::string payload;
  /// The close code of a close frame, if it has one.
  std::optional<int> close_code() const {
    if (opcode != 8 || payload.size() < 2) return std::nullopt;
    return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
  }
};

/// A client frame: masked unless told otherwise; `length_override` sends a
/// header declaring that length with no payload (for the 1009 check).
inline std::string make_frame(int opcode, std::string_view payload, bool fin = true, bool masked = true, int rsv = 0,
                              std::optional<std::uint64_t> length_override = std::nullopt) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  std::uint64_t len = length_override.value_or(payload.size());
  char mask_bit = masked ? static_cast<char>(0x80) : 0;
  if (len < 126) {
    out.push_back(static_cast<char>(mask_bit | static_cast<char>(len)));
  } else if (len < 65536) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(len & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  }
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) out.append(mask, 4);
  if (length_override) return out;
  if (masked) {
    for (std::size_t i = 0; i < payload.size(); ++i) out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  } else {
    out.append(payload);
  }
  return out;
}

inline std::string close_payload(int code, std::string_view reason = {}) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xff));
  p.append(reason);
  return p;
}

/// A raw WebSocket client connection (handshake done by open()).
class RawWebSocket {
 public:
  explicit RawWebSocket(int port) : conn_(port) {}

  /// Sends the handshake for `path` (plus `extra` header lines) and reads
  /// the answer.
  std::optional<RawResponse> open(std::string_view path, std::string_view extra = {}) {
    std::string req = "GET " + std::string(path) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                      std::string(extra) + "\r\n";
    if (!conn_.send(req)) return std::nullopt;
    return conn_.read_response(/*head_request=*/true);
  }

  bool send(std::string_view bytes) { return conn_.send(bytes); }

  /// The next frame, or nullopt on EOF or timeout.
  std::optional<Frame> read_frame() {
    if (!conn_.need(2)) return std::nullopt;
    auto b0 = static_cast<unsigned char>(conn_.buffer()[0]);
    auto b1 = static_cast<unsigned char>(conn_.buffer()[1]);
    std::size_t header = 2;
    std::uint64_t len = b1 & 0x7f;
    if (len == 126) {
      header = 4;
    } else if (len == 127) {
      header = 10;
    }
    if (!conn_.need(header)) return std::nullopt;
    if (header > 2) {
      len = 0;
      for (std::size_t i = 2; i < header; ++i) len = (len << 8) | static_cast<unsigned char>(conn_.buffer()[i]);
    }
    if (!conn_.need(header + len)) return std::nullopt;
    conn_.take(header);
    Frame f;
    f.fin = (b0 & 0x80) != 0;
    f.rsv = (b0 >> 4) & 7;
    f.opcode = b0 & 0x0f;
    f.payload = conn_.take(static_cast<std::size_t>(len));
    return f;
  }

  RawConnection& connection() noexcept { return conn_; }

 private:
  RawConnection conn_;
};

}  // namespace conformance_test
