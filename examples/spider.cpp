// A web spider with bounded concurrency, after Tornado's demos/webspider:
// N worker coroutines share a Queue of URLs, so at most N fetches run at
// once, and join() tells when every queued URL was handled. Fetching is
// simulated with timers over a made-up site of linked pages (a few of them
// broken), so the program runs anywhere and always crawls the same site.
//
//   spider [--concurrency N] [--pages N] [--smoke]
//
// --smoke crawls a small site quickly and checks the crawl: every reachable
// page handled exactly once, never more than N fetches at once. It exits
// non-zero if anything is wrong.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "squall/squall.hpp"

using namespace std::chrono_literals;
using squall::Future;

namespace {

struct Options {
  int concurrency = 10;
  int pages = 200;
  // Simulated fetch latency: from `latency_min` up to `latency_min` plus
  // `latency_spread`, different for every page.
  std::chrono::milliseconds latency_min{20};
  std::chrono::milliseconds latency_spread{80};
  bool smoke = false;
};

const std::string kBaseUrl = "http://squall.example/";

std::string page_url(int page) { return kBaseUrl + "page/" + std::to_string(page); }

// The made-up site: page i links to three other pages and to one page
// outside the site (which the spider must not follow). Every page whose
// number ends in 7 is broken.
struct Site {
  int pages;

  std::vector<int> links_of(int page) const {
    return {(page * 3 + 1) % pages, (page * 7 + 2) % pages, (page + 11) % pages};
  }
  bool broken(int page) const { return page % 10 == 7; }

  // Pages a correct crawl handles: breadth-first from the front page,
  // following links out of pages that load.
  std::set<std::string> reachable() const {
    std::set<std::string> seen{page_url(0)};
    std::deque<int> todo{0};
    while (!todo.empty()) {
      int page = todo.front();
      todo.pop_front();
      if (broken(page)) continue;
      for (int next : links_of(page)) {
        if (seen.insert(page_url(next)).second) todo.push_back(next);
      }
    }
    return seen;
  }
};

class Spider {
 public:
  explicit Spider(const Options& options) : options_(options), site_{options.pages} {}

  // Tornado's main(): queue the front page, start the workers, wait until
  // every queued URL was handled, then tell the workers to stop.
  Future<int> crawl() {
    auto start = squall::IOLoop::current().time();
    co_await queue_.put(page_url(0));

    std::vector<Future<void>> workers;
    for (int i = 0; i < options_.concurrency; ++i) workers.push_back(worker());
    co_await queue_.join(300s);

    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(squall::IOLoop::current().time() - start);
    std::printf("Done in %lld ms, fetched %zu URLs.\n", static_cast<long long>(took.count()), fetched_.size());
    std::printf("Unable to fetch %zu URLs.\n", dead_.size());

    // Tornado puts one None per worker; squall's queues can shut down, which
    // ends every worker's `while (auto url = co_await queue_.next())`.
    queue_.shutdown();
    for (auto& w : workers) co_await w;
    co_return check();
  }

 private:
  // Tornado's worker(): take URLs until the queue shuts down.
  Future<void> worker() {
    while (auto url = co_await queue_.next()) {
      try {
        co_await fetch_url(*url);
      } catch (const std::exception& e) {
        std::printf("Exception: %s %s\n", e.what(), url->c_str());
        dead_.insert(*url);
      }
      queue_.task_done();
    }
  }

  // Tornado's fetch_url(): skip URLs already taken, fetch, queue the links
  // beneath the base URL. A URL can be queued many times; it is fetched once.
  Future<void> fetch_url(std::string url) {
    if (fetching_.count(url)) co_return;
    std::printf("fetching %s\n", url.c_str());
    fetching_.insert(url);
    ++fetches_;
    std::vector<std::string> urls = co_await get_links_from_url(url);
    fetched_.insert(url);
    for (auto& next : urls) {
      // Only follow links beneath the base URL.
      if (next.compare(0, kBaseUrl.size(), kBaseUrl) == 0) co_await queue_.put(next);
    }
  }

  // The simulated HTTP fetch: waits for the page's latency, then returns its
  // links, or throws for a broken page.
  Future<std::vector<std::string>> get_links_from_url(std::string url) {
    int page = std::stoi(url.substr(url.rfind('/') + 1));
    InFlight in_flight(*this);
    auto spread = options_.latency_spread.count() + 1;
    co_await squall::sleep(options_.latency_min + std::chrono::milliseconds((page * 37) % spread));
    if (site_.broken(page)) throw std::runtime_error("HTTP 404: Not Found");
    std::vector<std::string> urls;
    for (int next : site_.links_of(page)) urls.push_back(page_url(next));
    urls.push_back("http://elsewhere.example/from/" + std::to_string(page));
    co_return urls;
  }

  // Counts fetches in flight, also when one throws.
  struct InFlight {
    explicit InFlight(Spider& s) : spider(s) {
      if (++spider.in_flight_ > spider.max_in_flight_) spider.max_in_flight_ = spider.in_flight_;
    }
    ~InFlight() { --spider.in_flight_; }
    Spider& spider;
  };

  int check() const {
    std::set<std::string> handled = fetched_;
    handled.insert(dead_.begin(), dead_.end());
    bool ok = true;
    if (fetching_ != handled) {
      std::printf("error: fetching != fetched | dead\n");
      ok = false;
    }
    if (handled != site_.reachable()) {
      std::printf("error: handled %zu URLs, the site has %zu reachable\n", handled.size(),
                  site_.reachable().size());
      ok = false;
    }
    if (fetches_ != handled.size()) {
      std::printf("error: %zu fetches for %zu URLs\n", fetches_, handled.size());
      ok = false;
    }
    if (max_in_flight_ > options_.concurrency) {
      std::printf("error: %d fetches at once, the limit is %d\n", max_in_flight_, options_.concurrency);
      ok = false;
    }
    std::printf("Fetches at once: at most %d (limit %d).\n", max_in_flight_, options_.concurrency);
    return ok ? 0 : 1;
  }

  Options options_;
  Site site_;
  squall::Queue<std::string> queue_;
  std::set<std::string> fetching_, fetched_, dead_;
  std::size_t fetches_ = 0;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
};

std::optional<Options> parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> int {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(argv[i]) + " needs a value");
      return std::stoi(argv[++i]);
    };
    if (std::strcmp(argv[i], "--smoke") == 0) {
      options.smoke = true;
      options.pages = 40;
      options.concurrency = 4;
      options.latency_min = 1ms;
      options.latency_spread = 4ms;
    } else if (std::strcmp(argv[i], "--concurrency") == 0) {
      options.concurrency = value();
    } else if (std::strcmp(argv[i], "--pages") == 0) {
      options.pages = value();
    } else {
      std::fprintf(stderr, "usage: spider [--concurrency N] [--pages N] [--smoke]\n");
      return std::nullopt;
    }
  }
  if (options.concurrency < 1 || options.pages < 1) {
    std::fprintf(stderr, "spider: --concurrency and --pages must be at least 1\n");
    return std::nullopt;
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spider: %s\n", e.what());
    return 2;
  }
  if (!options) return 2;
  squall::IOLoop loop;
  Spider spider(*options);
  try {
    std::optional<squall::Duration> limit;
    if (options->smoke) limit = 30s;  // a hung smoke run fails instead of hanging CTest
    return loop.run_sync([&] { return spider.crawl(); }, limit);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spider: %s\n", e.what());
    return 1;
  }
}
