// StaticFileHandler: serves the files of one directory (Tornado's
// tornado.web.StaticFileHandler), with strong ETags from a cached content
// hash, Last-Modified / If-Modified-Since, single byte ranges, HEAD, a
// default filename for directories, and versioned URLs cached far into the
// future. Large files are streamed in 64 KiB pieces with back-pressure,
// never read whole into memory.
//
// Confinement: the path comes from the route's first group, percent-decoded;
// whatever it says ("..", "%2F", a symlink pointing elsewhere) the file
// served must lie inside the root once every link is resolved (403
// otherwise; 404 when it does not exist).
//
//   std::vector<squall::web::Rule> rules = {
//       {"/files/(.*)", squall::web::handler<squall::web::StaticFileHandler>("/srv/files", "index.html")},
//   };
//
// With the static_path setting the Application serves static_url_prefix,
// /favicon.ico and /robots.txt through this handler; use_static_files()
// fills the three settings that takes, and templates get static_url(path).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "squall/core/future.hpp"
#include "squall/web/application.hpp"
#include "squall/web/request_handler.hpp"

namespace squall::web {

class StaticFileHandler : public RequestHandler {
 public:
  /// Versioned URLs (static_url's "?v=") are cached this long (Tornado's
  /// CACHE_MAX_AGE: ten years).
  static constexpr std::chrono::seconds kCacheMaxAge{86400LL * 365 * 10};

  /// Serves the directory given by the static_path setting.
  StaticFileHandler() = default;
  /// Serves `root`; a request for a directory serves its `default_filename`
  /// (empty: directories are 403).
  explicit StaticFileHandler(std::string root, std::string default_filename = {});
  StaticFileHandler(const char* root) : StaticFileHandler(std::string(root)) {}
  StaticFileHandler(const char* root, const char* default_filename)
      : StaticFileHandler(std::string(root), std::string(default_filename)) {}

  Future<void> get() override;

  /// Tornado's make_static_url: static_url_prefix + path, plus "?v=" and the
  /// file's version hash when `include_version` and the file exists.
  static std::string make_static_url(const Settings& settings, std::string_view path, bool include_version);
  /// The hash (32 hex digits) of the file at `path` under `root`, or nullopt
  /// when there is no such regular file inside root. Cached per file and
  /// recomputed when its size or modification time changes; thread-safe.
  static std::optional<std::string> get_version(const std::string& root, std::string_view path);

 protected:
  /// The Content-Type of `absolute_path` by its extension (Tornado asks
  /// mimetypes); application/octet-stream when unknown.
  virtual std::string get_content_type(std::string_view absolute_path) const;
  /// How long clients may cache the response: kCacheMaxAge for versioned
  /// requests (a "v" argument), else zero (no Cache-Control/Expires sent).
  virtual std::chrono::seconds get_cache_time(std::string_view path) ;
  /// Called after the standard headers are set, to add more.
  virtual void set_extra_headers(std::string_view path);

 private:
  struct File;
  std::optional<File> resolve(std::string_view path);
  bool should_return_304(const File& file);
  bool if_range_matches(const File& file);
  Future<void> send_range(const File& file, std::int64_t start, std::int64_t end);

  std::string root_;
  std::string default_filename_;
};

/// Serves `static_path` under `static_url_prefix` (and /favicon.ico,
/// /robots.txt) with StaticFileHandler, and makes static_url() version its
/// URLs: the three settings Tornado fills from static_path alone.
///
///   squall::web::Settings settings;
///   squall::web::use_static_files(settings, "static");
void use_static_files(Settings& settings, std::string static_path, std::string static_url_prefix = "/static/");

}  // namespace squall::web
