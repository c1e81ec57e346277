// Templates across threads: a Loader shared by several threads that load,
// render and reset it concurrently, and one compiled Template rendered by
// many threads at once (generate() is const and shares nothing mutable).
// Also run under ThreadSanitizer (the tsan preset builds *_threads_test).
#include "squall/web/template.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace squall::web {
namespace {

using nlohmann::json;

TEST(TemplateThreadsTest, ConcurrentLoadsRendersAndResetsAgree) {
  TemplateOptions options;
  options.functions["twice"] = [](const FunctionArgs& a) { return json(a[0].get<int>() * 2); };
  DictLoader loader(
      {
          {"base.html", "<{% block body %}{% end %}>"},
          {"page.html", "{% extends 'base.html' %}{% block body %}{% for i in range(n) %}{{ twice(i) }},{% end %}"
                        "{% include 'part.html' %}{% end %}"},
          {"part.html", "{{ who }}"},
      },
      options);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 100; ++k) {
        std::string out = loader.load("page.html").generate({{"n", 3}, {"who", "w" + std::to_string(t)}});
        if (out != "<0,2,4,w" + std::to_string(t) + ">") ++mismatches;
        if (t == 0 && k % 10 == 0) loader.reset();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(TemplateThreadsTest, OneTemplateRendersOnManyThreadsAtOnce) {
  Template t("{% set total = 0 %}{% for x in xs %}{% set total += x %}{% end %}{{ total }}:{{ name }}", "sum.txt");
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t_index = 0; t_index < 4; ++t_index) {
    threads.emplace_back([&, t_index] {
      json data = {{"xs", {1, 2, 3, t_index}}, {"name", "t" + std::to_string(t_index)}};
      std::string expected = std::to_string(6 + t_index) + ":t" + std::to_string(t_index);
      for (int k = 0; k < 200; ++k) {
        if (t.generate(data) != expected) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace squall::web
