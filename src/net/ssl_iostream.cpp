#include "squall/net/ssl_iostream.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>

#include <cstdint>
#include <cstring>

namespace squall::net {

namespace {

// Small iovecs (a response head and body) are sent as one TLS record.
constexpr std::size_t kCoalesceLimit = 16 * 1024;

// OpenSSL's socket BIO writes with write(2): a peer that went away would
// raise SIGPIPE. This BIO sends with MSG_NOSIGNAL instead (the socket is
// the BIO's data; the stream owns and closes it).
int bio_write(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
  ssize_t n;
  do {
    n = ::send(fd, data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int bio_read(BIO* bio, char* data, int len) {
  BIO_clear_retry_flags(bio);
  int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
  ssize_t n;
  do {
    n = ::recv(fd, data, static_cast<std::size_t>(len), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  // Flushing is a no-op: every write goes straight to the socket.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_puts(BIO* bio, const char* text) { return bio_write(bio, text, static_cast<int>(std::strlen(text))); }

const BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "squall socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, bio_puts);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, [](BIO* b) {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

SSLIOStream::SSLIOStream(UniqueFd socket, std::shared_ptr<SSLContext> context, std::string server_hostname,
                         StreamOptions options)
    : IOStream(std::move(socket), options), context_(std::move(context)) {
  // SSL_read stops at a record boundary: a short read says nothing about
  // whether the socket is drained.
  set_short_read_drains(false);
  ssl_ = SSL_new(context_->native());
  if (!ssl_) throw SSLError("SSL_new: " + ssl_error_text());
  BIO* bio = BIO_new(socket_bio_method());
  if (!bio) throw SSLError("BIO_new: " + ssl_error_text());
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fileno())));
  SSL_set_bio(ssl_, bio, bio);  // the SSL owns the BIO
  if (context_->is_server()) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!server_hostname.empty()) {
      // SNI is only for names (RFC 6066 section 3), never for IP literals.
      if (!is_ip_literal(server_hostname)) SSL_set_tlsext_host_name(ssl_, server_hostname.c_str());
      if (context_->verify_peer() && context_->check_hostname()) {
        if (is_ip_literal(server_hostname)) {
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_hostname.c_str());
        } else {
          SSL_set1_host(ssl_, server_hostname.c_str());
        }
      }
    }
  }
  handshake_ = Future<void>();
  // Until the handshake ends, readiness goes to on_handshake_event.
  set_fd_readable(true);
  set_fd_writable(true);
  do_handshake();
}

SSLIOStream::~SSLIOStream() {
  close();  // while this object is whole, so close_notify can be sent
  SSL_free(ssl_);
}

Future<void> SSLIOStream::wait_for_handshake() { return handshake_; }

void SSLIOStream::on_handshake_event(std::uint32_t) { do_handshake(); }

void SSLIOStream::do_handshake() {
  if (closed() || handshake_done_) return;
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    handshake_done_ = true;
    // Readiness seen during the handshake was consumed by it: try both.
    set_fd_readable(true);
    set_fd_writable(true);
    Future<void> done = handshake_;
    resume_io();  // serves reads and writes queued meanwhile; may destroy us
    if (!done.done()) done.set_result();
    return;
  }
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;  // the next edge continues
  std::string why;
  long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  } else if (err == SSL_ERROR_SYSCALL) {
    why = errno ? std::strerror(errno) : "connection closed during the handshake";
  } else {
    why = ssl_error_text();
  }
  handshake_error_ = std::make_exception_ptr(SSLError("TLS handshake failed: " + why));
  close(handshake_error_);  // fails the handshake future with the SSLError
}

IOResult SSLIOStream::result_of(int rc, const char* op) {
  int err = SSL_get_error(ssl_, rc);
  switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return IOResult::would_block();
    case SSL_ERROR_ZERO_RETURN:
      return IOResult::eof();
    case SSL_ERROR_SYSCALL:
      if (errno == 0) return IOResult::eof();
      return IOResult::failed(errno);
    default:
      return IOResult::failed(0, std::string(op) + ": " + ssl_error_text());
  }
}

IOResult SSLIOStream::read_from_fd(char* buf, std::size_t n) {
  ERR_clear_error();
  errno = 0;
  std::size_t got = 0;
  int rc = SSL_read_ex(ssl_, buf, n, &got);
  if (rc == 1) return IOResult::bytes_moved(got);
  return result_of(rc, "TLS read");
}

IOResult SSLIOStream::write_to_fd(const iovec* iov, int count) {
  // OpenSSL has no writev: coalesce small buffers into one record, else
  // write them one by one and report how far we got.
  char scratch[kCoalesceLimit];
  std::size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  if (count > 1 && total <= kCoalesceLimit) {
    std::size_t at = 0;
    for (int i = 0; i < count; ++i) {
      std::memcpy(scratch + at, iov[i].iov_base, iov[i].iov_len);
      at += iov[i].iov_len;
    }
    iovec one{scratch, total};
    return write_to_fd(&one, 1);
  }
  std::size_t sent = 0;
  for (int i = 0; i < count; ++i) {
    ERR_clear_error();
    errno = 0;
    std::size_t wrote = 0;
    int rc = SSL_write_ex(ssl_, iov[i].iov_base, iov[i].iov_len, &wrote);
    if (rc == 1) {
      sent += wrote;
      if (wrote < iov[i].iov_len) break;
      continue;
    }
    IOResult r = result_of(rc, "TLS write");
    if (sent > 0 && r.kind == IOResult::kWouldBlock) break;
    if (sent == 0) return r;
    break;
  }
  return IOResult::bytes_moved(sent);
}

bool SSLIOStream::has_pending_input() const noexcept { return ssl_ && SSL_pending(ssl_) > 0; }

void SSLIOStream::before_close() noexcept {
  // One non-blocking close_notify; the peer may be gone, so errors are moot.
  if (ssl_ && handshake_done_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

void SSLIOStream::collect_pending(std::vector<std::pair<Future<void>, std::exception_ptr>>& out) {
  if (handshake_.valid() && !handshake_.done()) out.emplace_back(handshake_, handshake_error_);
}

std::string SSLIOStream::selected_alpn_protocol() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
}

std::string SSLIOStream::peer_certificate_subject() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) return {};
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  X509_free(cert);
  return buf;
}

Future<std::unique_ptr<SSLIOStream>> start_tls(std::unique_ptr<IOStream> stream, std::shared_ptr<SSLContext> context,
                                               std::string server_hostname) {
  StreamOptions options = stream->options();
  UniqueFd fd = stream->detach();
  stream.reset();
  auto tls = std::make_unique<SSLIOStream>(std::move(fd), std::move(context), std::move(server_hostname), options);
  co_await tls->wait_for_handshake();
  co_return std::move(tls);
}

}  // namespace squall::net
