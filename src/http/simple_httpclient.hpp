// The native backend of AsyncHTTPClient (Tornado's simple_httpclient, with
// keep-alive): HTTP/1.1 over TCPClient and SSLIOStream, responses parsed
// in place by squall's parser (http1_client_connection.hpp), a connection
// pool per (scheme, host, port, TLS settings), max_clients with a FIFO
// queue, redirects, timeouts, gzip and streaming both ways.
//
// Private to src/: AsyncHTTPClient::create(HTTPClientBackend::native, ...)
// is the public way in. Loop affinity: the client belongs to the loop that
// is current when it is made; use and destroy it on that loop's thread.
#pragma once

#include <memory>

#include "squall/http/httpclient.hpp"

namespace squall::http {

/// A native client for the current loop.
std::unique_ptr<AsyncHTTPClient> make_simple_http_client(HTTPClientOptions options);

}  // namespace squall::http
