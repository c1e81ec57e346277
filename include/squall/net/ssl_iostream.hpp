// SSLIOStream: an IOStream speaking TLS over a connected socket (Tornado's
// SSLIOStream). The handshake runs by itself from construction; reads and
// writes issued before it ends wait for it. Loop-affine like every stream.
#pragma once

#include <memory>
#include <string>

#include "squall/net/iostream.hpp"
#include "squall/net/ssl_context.hpp"

typedef struct ssl_st SSL;  // from <openssl/types.h>

namespace squall::net {

class SSLIOStream final : public IOStream {
 public:
  /// `server_hostname` (clients): sent as SNI and, if the context checks
  /// hostnames, matched against the certificate.
  SSLIOStream(UniqueFd socket, std::shared_ptr<SSLContext> context, std::string server_hostname = {},
              StreamOptions options = {});
  ~SSLIOStream() override;

  /// Resolves when the handshake is done; fails with SSLError (and the
  /// stream closes) if it fails. May be awaited any number of times.
  Future<void> wait_for_handshake();
  bool handshake_done() const noexcept { return handshake_done_; }
  /// The ALPN protocol agreed on, or empty.
  std::string selected_alpn_protocol() const;
  /// The peer certificate's subject, or empty (no certificate).
  std::string peer_certificate_subject() const;
  SSL* native() const noexcept { return ssl_; }

 protected:
  IOResult read_from_fd(char* buf, std::size_t n) override;
  IOResult write_to_fd(const iovec* iov, int count) override;
  bool io_ready() const noexcept override { return handshake_done_; }
  bool has_pending_input() const noexcept override;
  void before_close() noexcept override;
  void collect_pending(std::vector<std::pair<Future<void>, std::exception_ptr>>& out) override;
  void on_handshake_event(std::uint32_t events) override;

 private:
  void do_handshake();
  IOResult result_of(int rc, const char* op);

  std::shared_ptr<SSLContext> context_;
  SSL* ssl_ = nullptr;
  Future<void> handshake_{nullptr};
  std::exception_ptr handshake_error_;
  bool handshake_done_ = false;
};

/// Upgrades a plain stream to TLS (Tornado's IOStream.start_tls): the
/// stream must have no pending read or write and no buffered input. The
/// old stream is consumed; the new one is returned once the handshake is
/// done.
Future<std::unique_ptr<SSLIOStream>> start_tls(std::unique_ptr<IOStream> stream,
                                               std::shared_ptr<SSLContext> context,
                                               std::string server_hostname = {});

}  // namespace squall::net
