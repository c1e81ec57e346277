// StaticFileHandler over real sockets: content and types, validators and
// 304s, byte ranges and 416, HEAD, directories and default filenames,
// confinement against "..", encoded slashes and symlinks, versioned URLs,
// the static_path setting, and a file larger than any buffer.
#include "squall/web/static_file_handler.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "squall/http/httputil.hpp"
#include "squall/testing.hpp"
#include "web_test_support.hpp"

namespace squall::web {
namespace {

using test::get;

void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

/// A temporary tree: root/{hello.txt, page.html, big.bin, sub/index.html,
/// plain/, link-out -> ../secret.txt} and secret.txt beside root.
class StaticTree {
 public:
  StaticTree() {
    char tmpl[] = "/tmp/squall-static-XXXXXX";
    base_ = ::mkdtemp(tmpl);
    root_ = base_ / "root";
    std::filesystem::create_directories(root_ / "sub");
    std::filesystem::create_directories(root_ / "plain");
    write_file(root_ / "hello.txt", "Hello, static world!\n");
    write_file(root_ / "page.html", "<p>page</p>");
    write_file(root_ / "sub" / "index.html", "<h1>index</h1>");
    write_file(base_ / "secret.txt", "top secret");
    std::filesystem::create_symlink("../secret.txt", root_ / "link-out");
    std::filesystem::create_symlink("hello.txt", root_ / "link-in.txt");
    big_.resize(3 * 1024 * 1024 + 17);
    for (std::size_t i = 0; i < big_.size(); ++i) big_[i] = static_cast<char>('a' + (i * 7919) % 26);
    write_file(root_ / "big.bin", big_);
  }
  ~StaticTree() { std::filesystem::remove_all(base_); }
  std::string root() const { return root_.string(); }
  const std::string& big() const { return big_; }

 private:
  std::filesystem::path base_;
  std::filesystem::path root_;
  std::string big_;
};

class StaticFileHandlerTest : public test::WebTest {
 protected:
  std::vector<Rule> rules() override {
    return {
        {"/files/(.*)", handler<StaticFileHandler>(tree_.root())},
        {"/site/(.*)", handler<StaticFileHandler>(tree_.root(), std::string("index.html"))},
    };
  }
  StaticTree tree_;
};

SQUALL_ASYNC_TEST(StaticFileHandlerTest, ServesAFileWithItsTypeAndValidators) {
  auto r = co_await fetch("/files/hello.txt");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello, static world!\n");
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/plain");
  EXPECT_EQ(r.headers.get("Content-Length", ""), "21");
  EXPECT_EQ(r.headers.get("Accept-Ranges", ""), "bytes");
  std::string etag(r.headers.get("Etag", ""));
  EXPECT_EQ(etag.size(), 34u);  // "<32 hex digits>"
  EXPECT_EQ(etag.front(), '"');
  EXPECT_TRUE(r.headers.contains("Last-Modified"));
  EXPECT_FALSE(r.headers.contains("Cache-Control"));  // unversioned

  r = co_await fetch("/files/page.html");
  EXPECT_EQ(r.headers.get("Content-Type", ""), "text/html");
  r = co_await fetch("/files/link-in.txt");  // a link that stays inside is fine
  EXPECT_EQ(r.body, "Hello, static world!\n");
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, IfNoneMatchAndIfModifiedSinceAnswer304) {
  auto first = co_await fetch("/files/hello.txt");
  std::string etag(first.headers.get("Etag", ""));
  std::string modified(first.headers.get("Last-Modified", ""));

  auto req = get({{"If-None-Match", etag}});
  auto r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_FALSE(r.headers.contains("Content-Type"));

  req = get({{"If-None-Match", "\"something-else\""}, {"If-Modified-Since", modified}});
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 200);  // If-None-Match decides when present

  req = get({{"If-Modified-Since", modified}});
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 304);

  req = get({{"If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}});
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello, static world!\n");
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, SingleRangesAnswer206) {
  auto req = get({{"Range", "bytes=0-4"}});
  auto r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 206);
  EXPECT_EQ(r.body, "Hello");
  EXPECT_EQ(r.headers.get("Content-Range", ""), "bytes 0-4/21");
  EXPECT_EQ(r.headers.get("Content-Length", ""), "5");

  req = get({{"Range", "bytes=-7"}});
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 206);
  EXPECT_EQ(r.body, "world!\n");
  EXPECT_EQ(r.headers.get("Content-Range", ""), "bytes 14-20/21");

  req = get({{"Range", "bytes=7-"}});
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 206);
  EXPECT_EQ(r.body, "static world!\n");

  req = get({{"Range", "bytes=10-1000"}});  // the end is clamped
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 206);
  EXPECT_EQ(r.headers.get("Content-Range", ""), "bytes 10-20/21");

  req = get({{"Range", "bytes=0-20"}});  // the whole file is a 200
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 200);
  EXPECT_FALSE(r.headers.contains("Content-Range"));

  // If-Range: the range applies only to the representation the client has.
  std::string etag(r.headers.get("Etag", ""));
  std::string modified(r.headers.get("Last-Modified", ""));
  req = get({{"Range", "bytes=0-4"}, {"If-Range", etag}});
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 206);
  req = get({{"Range", "bytes=0-4"}, {"If-Range", modified}});
  r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 206);
  for (const char* stale : {"\"0123\"", "Sat, 01 Jan 2000 00:00:00 GMT", "W/\"x\""}) {
    req = get({{"Range", "bytes=0-4"}, {"If-Range", stale}});
    r = co_await fetch("/files/hello.txt", req);
    EXPECT_EQ(r.code, 200) << stale;
    EXPECT_EQ(r.body.size(), 21u) << stale;
  }

  // Several ranges or a foreign unit: the whole file, as RFC 9110 allows.
  for (const char* header : {"bytes=0-1,3-4", "lines=1-2", "bytes=x-y", "bytes=-"}) {
    req = get({{"Range", header}});
    r = co_await fetch("/files/hello.txt", req);
    EXPECT_EQ(r.code, 200) << header;
    EXPECT_EQ(r.body.size(), 21u) << header;
  }
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, UnsatisfiableRangesAnswer416) {
  for (const char* header : {"bytes=21-", "bytes=100-200", "bytes=5-2", "bytes=-0"}) {
    auto req = get({{"Range", header}});
    auto r = co_await fetch("/files/hello.txt", req);
    EXPECT_EQ(r.code, 416) << header;
    EXPECT_EQ(r.headers.get("Content-Range", ""), "bytes */21") << header;
  }
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, HeadSendsTheLengthWithoutTheBody) {
  auto req = test::request("HEAD");
  auto r = co_await fetch("/files/big.bin", req);
  EXPECT_EQ(r.code, 200);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.headers.get("Content-Length", ""), std::to_string(tree_.big().size()));
  EXPECT_EQ(r.headers.get("Content-Type", ""), "application/octet-stream");
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, StreamsAFileLargerThanTheChunkSize) {
  auto r = co_await fetch("/files/big.bin");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body.size(), tree_.big().size());
  EXPECT_TRUE(r.body == tree_.big());
  auto req = get({{"Range", "bytes=1000000-2500000"}});
  r = co_await fetch("/files/big.bin", req);
  EXPECT_EQ(r.code, 206);
  EXPECT_TRUE(r.body == tree_.big().substr(1000000, 1500001));
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, PathsOutsideTheRootAreRefused) {
  testing::ExpectLog expect("squall.general", "^403 GET /files/", true);
  // "..%2F" decodes to "../": still outside the root.
  auto r = co_await fetch("/files/..%2Fsecret.txt");
  EXPECT_EQ(r.code, 403);
  EXPECT_EQ(r.body.find("top secret"), std::string::npos);
  r = co_await fetch("/files/sub/..%2F..%2Fsecret.txt");
  EXPECT_EQ(r.code, 403);
  r = co_await fetch("/files/%2Fetc%2Fpasswd");  // absolute paths are relative to the root
  EXPECT_EQ(r.code, 404);
  // A symlink whose target is outside the root.
  r = co_await fetch("/files/link-out");
  EXPECT_EQ(r.code, 403);
  EXPECT_EQ(r.body.find("top secret"), std::string::npos);
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, MissingFilesAndDirectories) {
  testing::ExpectLog expect("squall.general", "^40[03] GET /files/", true);
  auto r = co_await fetch("/files/nope.txt");
  EXPECT_EQ(r.code, 404);
  r = co_await fetch("/files/hello.txt%00.html");
  EXPECT_EQ(r.code, 400);
  r = co_await fetch("/files/plain");  // a directory without default filename
  EXPECT_EQ(r.code, 403);
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, DirectoriesServeTheirDefaultFilename) {
  auto req = get();
  auto r = co_await fetch("/site/sub", req);
  EXPECT_EQ(r.code, 301);
  EXPECT_EQ(r.headers.get("Location", ""), "/site/sub/");
  r = co_await fetch("/site/sub/");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "<h1>index</h1>");
  r = co_await fetch("/site/plain/");  // no index.html there
  EXPECT_EQ(r.code, 404);
}

SQUALL_ASYNC_TEST(StaticFileHandlerTest, OnlyGetAndHeadAreAllowed) {
  auto req = test::request("POST", std::string("x"));
  auto r = co_await fetch("/files/hello.txt", req);
  EXPECT_EQ(r.code, 405);
  EXPECT_EQ(r.headers.get("Allow", ""), "GET, HEAD, OPTIONS");
}

TEST(StaticFileVersionTest, VersionsFollowTheContent) {
  StaticTree tree;
  auto v1 = StaticFileHandler::get_version(tree.root(), "hello.txt");
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->size(), 32u);
  EXPECT_EQ(StaticFileHandler::get_version(tree.root(), "hello.txt"), v1);
  EXPECT_EQ(StaticFileHandler::get_version(tree.root(), "/hello.txt"), v1);
  EXPECT_FALSE(StaticFileHandler::get_version(tree.root(), "missing.txt"));
  EXPECT_FALSE(StaticFileHandler::get_version(tree.root(), "../secret.txt"));
  EXPECT_FALSE(StaticFileHandler::get_version(tree.root(), "link-out"));
  EXPECT_FALSE(StaticFileHandler::get_version(tree.root(), "sub"));
  // A different size invalidates the cached hash.
  write_file(std::filesystem::path(tree.root()) / "hello.txt", "changed content");
  auto v2 = StaticFileHandler::get_version(tree.root(), "hello.txt");
  ASSERT_TRUE(v2);
  EXPECT_NE(*v1, *v2);

  Settings settings;
  use_static_files(settings, tree.root(), "/assets/");
  EXPECT_EQ(StaticFileHandler::make_static_url(settings, "hello.txt", true), "/assets/hello.txt?v=" + *v2);
  EXPECT_EQ(StaticFileHandler::make_static_url(settings, "hello.txt", false), "/assets/hello.txt");
  EXPECT_EQ(StaticFileHandler::make_static_url(settings, "missing.txt", true), "/assets/missing.txt");
}

/// The static_path setting: static_url_prefix, /robots.txt and static_url().
class StaticPathSettingTest : public test::WebTest {
 protected:
  class UrlHandler : public RequestHandler {
   public:
    Future<void> get() override {
      write(static_url("hello.txt"));
      co_return;
    }
  };
  std::vector<Rule> rules() override { return {{"/url", handler<UrlHandler>()}}; }
  Settings settings() override {
    Settings s;
    use_static_files(s, tree_.root());
    return s;
  }
  StaticTree tree_;
};

SQUALL_ASYNC_TEST(StaticPathSettingTest, VersionedUrlsAreCachedFarAhead) {
  auto r = co_await fetch("/url");
  CO_ASSERT_EQ(r.code, 200);
  std::string url = r.body;
  EXPECT_TRUE(url.starts_with("/static/hello.txt?v=")) << url;

  r = co_await fetch(url);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "Hello, static world!\n");
  EXPECT_EQ(r.headers.get("Cache-Control", ""), "max-age=315360000");
  auto expires = http::parse_http_date(r.headers.get("Expires", ""));
  CO_ASSERT_TRUE(expires);
  EXPECT_GT(*expires, std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 9));

  write_file(std::filesystem::path(tree_.root()) / "robots.txt", "User-agent: *\n");
  r = co_await fetch("/robots.txt");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "User-agent: *\n");
}

}  // namespace
}  // namespace squall::web
