// The libcurl backend of AsyncHTTPClient (Tornado's curl_httpclient): one
// CURLM multi handle driven by the IOLoop through libcurl's multi-socket API
// (fd handlers and one loop timer; no polling thread).
//
// Private to src/: AsyncHTTPClient::create(HTTPClientBackend::curl, ...)
// is the public way in. Loop affinity: the client belongs to the loop that
// is current when it is made.
#pragma once

#include <memory>

#include "squall/http/httpclient.hpp"

namespace squall::http {

/// A client on libcurl for the current loop.
std::unique_ptr<AsyncHTTPClient> make_curl_http_client(HTTPClientOptions options);

}  // namespace squall::http
