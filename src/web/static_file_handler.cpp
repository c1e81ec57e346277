// StaticFileHandler: path confinement, validators (ETag, Last-Modified),
// byte ranges and streaming of one file.
#include "squall/web/static_file_handler.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>

#include "squall/core/unique_fd.hpp"
#include "squall/http/httputil.hpp"
#include "squall/web/http_error.hpp"

namespace squall::web {

namespace {

constexpr std::size_t kChunkSize = 64 * 1024;

/// The canonical path (every link resolved), or nullopt if it does not exist.
std::optional<std::string> real_path(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr), &std::free);
  if (!resolved) return std::nullopt;
  return std::string(resolved.get());
}

/// `path` is `root` or lies below it (both canonical, root without a
/// trailing slash unless it is "/").
bool inside(std::string_view path, std::string_view root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.starts_with(root) && path[root.size()] == '/');
}

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

/// MD5 of the file's content in hex (Tornado's get_content_version): a
/// cache validator, not a signature, so the fast digest is the right one.
std::optional<std::string> hash_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) return std::nullopt;
  std::string buffer(kChunkSize, '\0');
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n));
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &length) != 1) return std::nullopt;
  return hex(digest.data(), length);
}

struct VersionEntry {
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::string hash;
};

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

/// Hashes by canonical path, shared by every loop thread.
class VersionCache {
 public:
  std::optional<std::string> get(const std::string& path, const struct stat& st) {
    {
      std::lock_guard lock(mutex_);
      auto it = entries_.find(path);
      if (it != entries_.end() && it->second.size == st.st_size && it->second.mtime_ns == mtime_ns(st)) {
        return it->second.hash;
      }
    }
    // Hash outside the lock: two threads may both hash a new file once.
    auto hash = hash_file(path);
    if (!hash) return std::nullopt;
    std::lock_guard lock(mutex_);
    entries_[path] = VersionEntry{st.st_size, mtime_ns(st), *hash};
    return hash;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, VersionEntry, std::less<>> entries_;
};

VersionCache& version_cache() {
  static VersionCache cache;
  return cache;
}

/// Where `relative` (a decoded URL path) lands under `root` (canonical),
/// judged lexically; nullopt if "..", an absolute path or a NUL escapes.
std::optional<std::string> join_lexically(const std::string& root, std::string_view relative) {
  if (relative.find('\0') != std::string_view::npos) return std::nullopt;
  while (relative.starts_with('/')) relative.remove_prefix(1);
  std::filesystem::path joined = std::filesystem::path(root) / std::filesystem::path(relative);
  std::string normal = joined.lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  if (!inside(normal, root)) return std::nullopt;
  return normal;
}

struct ContentType {
  std::string_view extension;
  std::string_view type;
};

// The types a web site serves; anything else is application/octet-stream.
constexpr ContentType kContentTypes[] = {
    {".html", "text/html"},          {".htm", "text/html"},
    {".css", "text/css"},            {".js", "text/javascript"},
    {".mjs", "text/javascript"},     {".json", "application/json"},
    {".map", "application/json"},    {".txt", "text/plain"},
    {".md", "text/markdown"},        {".csv", "text/csv"},
    {".xml", "application/xml"},     {".svg", "image/svg+xml"},
    {".png", "image/png"},           {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},         {".gif", "image/gif"},
    {".webp", "image/webp"},         {".avif", "image/avif"},
    {".ico", "image/vnd.microsoft.icon"}, {".woff", "font/woff"},
    {".woff2", "font/woff2"},        {".ttf", "font/ttf"},
    {".otf", "font/otf"},            {".wasm", "application/wasm"},
    {".pdf", "application/pdf"},     {".zip", "application/zip"},
    {".gz", "application/gzip"},     {".tar", "application/x-tar"},
    {".mp4", "video/mp4"},           {".webm", "video/webm"},
    {".mp3", "audio/mpeg"},          {".ogg", "audio/ogg"},
    {".wav", "audio/wav"},           {".webmanifest", "application/manifest+json"},
};

bool ends_with_ignore_case(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s.remove_prefix(s.size() - suffix.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

/// A single byte range of a `Range` header as [start, end) in Tornado's
/// convention: start negative for a suffix, end nullopt for "to the end".
/// nullopt for anything else (several ranges, other units, garbage): the
/// whole file is served, as RFC 9110 section 14.2 allows.
struct ByteRange {
  std::optional<std::int64_t> start;
  std::optional<std::int64_t> end;
};

std::optional<std::int64_t> parse_decimal(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<ByteRange> parse_range(std::string_view header) {
  constexpr std::string_view kUnit = "bytes=";
  if (!header.starts_with(kUnit)) return std::nullopt;
  std::string_view spec = header.substr(kUnit.size());
  auto dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return std::nullopt;
  std::string_view first = spec.substr(0, dash);
  std::string_view last = spec.substr(dash + 1);
  ByteRange r;
  bool first_empty = first.find_first_not_of(" \t") == std::string_view::npos;
  bool last_empty = last.find_first_not_of(" \t") == std::string_view::npos;
  if (first_empty && last_empty) return std::nullopt;
  if (!first_empty) {
    r.start = parse_decimal(first);
    if (!r.start) return std::nullopt;
  }
  if (!last_empty) {
    auto v = parse_decimal(last);
    if (!v) return std::nullopt;
    if (first_empty) {
      // A suffix: the last v bytes; "-0" asks for nothing (a 416).
      if (*v == 0) {
        r.end = 0;
      } else {
        r.start = -*v;
      }
    } else {
      r.end = *v + 1;  // inclusive in the header, exclusive here
    }
  }
  return r;
}

}  // namespace

struct StaticFileHandler::File {
  std::string path;  // canonical
  std::int64_t size = 0;
  std::chrono::system_clock::time_point modified{};
  std::string etag;
};

StaticFileHandler::StaticFileHandler(std::string root, std::string default_filename)
    : root_(std::move(root)), default_filename_(std::move(default_filename)) {}

std::optional<std::string> StaticFileHandler::get_version(const std::string& root, std::string_view path) {
  auto canonical_root = real_path(root);
  if (!canonical_root) return std::nullopt;
  auto candidate = join_lexically(*canonical_root, path);
  if (!candidate) return std::nullopt;
  auto canonical = real_path(*candidate);
  if (!canonical || !inside(*canonical, *canonical_root)) return std::nullopt;
  struct stat st {};
  if (::stat(canonical->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return version_cache().get(*canonical, st);
}

std::string StaticFileHandler::make_static_url(const Settings& settings, std::string_view path,
                                               bool include_version) {
  std::string url = settings.static_url_prefix;
  url.append(path);
  if (!include_version) return url;
  auto version = get_version(settings.static_path, path);
  if (!version) return url;
  url.append("?v=").append(*version);
  return url;
}

std::optional<StaticFileHandler::File> StaticFileHandler::resolve(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) throw HTTPError(400, "NUL in the path");
  const std::string& root = root_.empty() ? settings().static_path : root_;
  auto canonical_root = real_path(root);
  if (!canonical_root) throw HTTPError(404, "static root " + root + " does not exist");
  auto candidate = join_lexically(*canonical_root, path);
  if (!candidate) throw HTTPError(403, std::string(path) + " is not in root static directory");
  auto canonical = real_path(*candidate);
  if (!canonical) throw HTTPError(404);
  if (!inside(*canonical, *canonical_root)) {
    throw HTTPError(403, std::string(path) + " resolves outside the root static directory");
  }
  struct stat st {};
  if (::stat(canonical->c_str(), &st) != 0) throw HTTPError(404);
  if (S_ISDIR(st.st_mode) && !default_filename_.empty()) {
    // A directory's relative links need the trailing slash (Tornado).
    if (!request().path.ends_with('/')) {
      redirect(request().path + "/", true);
      return std::nullopt;
    }
    auto index = real_path(*canonical + "/" + default_filename_);
    if (!index) throw HTTPError(404);
    if (!inside(*index, *canonical_root)) throw HTTPError(403, default_filename_ + " resolves outside the root");
    canonical = std::move(index);
    if (::stat(canonical->c_str(), &st) != 0) throw HTTPError(404);
  }
  if (!S_ISREG(st.st_mode)) throw HTTPError(403, std::string(path) + " is not a file");
  auto version = version_cache().get(*canonical, st);
  if (!version) throw HTTPError(404);
  File file;
  file.path = std::move(*canonical);
  file.size = st.st_size;
  file.modified = std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));
  file.etag = "\"" + *version + "\"";
  return file;
}

bool StaticFileHandler::should_return_304(const File& file) {
  // If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2).
  if (request().headers.contains("If-None-Match")) return check_etag_header();
  if (auto since = request().headers.get("If-Modified-Since")) {
    auto when = http::parse_http_date(*since);
    return when && *when >= file.modified;
  }
  return false;
}

bool StaticFileHandler::if_range_matches(const File& file) {
  // RFC 9110 section 13.1.5: a Range applies only while the representation
  // is the one the client has (strong ETag, or exactly its date).
  auto validator = request().headers.get("If-Range");
  if (!validator) return true;
  if (validator->starts_with('"')) return *validator == file.etag;
  auto date = http::parse_http_date(*validator);
  return date && *date == file.modified;
}

Future<void> StaticFileHandler::get() {
  std::string path = path_args().empty() ? std::string() : path_args()[0];
  auto resolved = resolve(path);
  if (!resolved) co_return;  // redirected
  const File& file = *resolved;

  set_header("Etag", file.etag);
  set_header("Last-Modified", file.modified);
  set_header("Accept-Ranges", "bytes");
  set_header("Content-Type", get_content_type(file.path));
  auto cache_time = get_cache_time(path);
  if (cache_time.count() > 0) {
    set_header("Expires", std::chrono::system_clock::now() + cache_time);
    set_header("Cache-Control", "max-age=" + std::to_string(cache_time.count()));
  }
  set_extra_headers(path);

  if (should_return_304(file)) {
    set_status(304);
    co_return;
  }

  std::int64_t start = 0;
  std::int64_t end = file.size;
  auto range_header = request().headers.get("Range");
  if (range_header && !if_range_matches(file)) range_header.reset();
  if (auto header = range_header) {
    if (auto range = parse_range(*header)) {
      std::optional<std::int64_t> first = range->start;
      if (first && *first < 0) first = std::max<std::int64_t>(0, *first + file.size);
      bool unsatisfiable = (first && (*first >= file.size || (range->end && *first >= *range->end))) ||
                           (range->end && *range->end == 0);
      if (unsatisfiable) {
        set_status(416);
        set_header("Content-Type", "text/plain");
        set_header("Content-Range", "bytes */" + std::to_string(file.size));
        co_return;
      }
      start = first.value_or(0);
      end = range->end ? std::min(*range->end, file.size) : file.size;
      if (end - start != file.size) {
        set_status(206);
        set_header("Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string(end - 1) + "/" +
                                        std::to_string(file.size));
      }
    }
  }
  set_header("Content-Length", end - start);
  if (request().method == "HEAD") co_return;
  co_await send_range(file, start, end);
}

Future<void> StaticFileHandler::send_range(const File& file, std::int64_t start, std::int64_t end) {
  UniqueFd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw HTTPError(404);
  std::string buffer;
  while (start < end) {
    std::size_t want = static_cast<std::size_t>(std::min<std::int64_t>(end - start, kChunkSize));
    buffer.resize(want);
    ssize_t n = ::pread(fd.get(), buffer.data(), want, start);
    if (n < 0 && errno == EINTR) continue;
    // The file shrank or vanished under us: the length is promised, so the
    // only honest ending is an aborted response (an exception after the
    // headers went out closes the connection).
    if (n <= 0) throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "reading " + file.path);
    buffer.resize(static_cast<std::size_t>(n));
    write(buffer);
    start += n;
    // Small files go out with finish(); larger ones are flushed piece by
    // piece so memory stays at one chunk whatever the file's size.
    if (start < end) co_await flush();
  }
}

std::string StaticFileHandler::get_content_type(std::string_view absolute_path) const {
  for (const auto& entry : kContentTypes) {
    if (ends_with_ignore_case(absolute_path, entry.extension)) return std::string(entry.type);
  }
  return "application/octet-stream";
}

std::chrono::seconds StaticFileHandler::get_cache_time(std::string_view) {
  return query_arguments().contains("v") ? kCacheMaxAge : std::chrono::seconds(0);
}

void StaticFileHandler::set_extra_headers(std::string_view) {}

void use_static_files(Settings& settings, std::string static_path, std::string static_url_prefix) {
  settings.static_path = std::move(static_path);
  settings.static_url_prefix = std::move(static_url_prefix);
  settings.static_handler = handler<StaticFileHandler>();
  settings.make_static_url = &StaticFileHandler::make_static_url;
}

}  // namespace squall::web
