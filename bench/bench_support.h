// What the bench executables share: their command-line options, the timing of a step over warm-up and measured
// rounds, the peak resident set, and how a failed bench ends.
#pragma once
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace repa::bench {

// Binds each `--name` to a variable. parse() fills them from argv and names an unknown option, a missing value and
// a value that is not a number of the variable's type.
class Options {
 public:
  // `--name` alone sets *out to true.
  Options& flag(const std::string& name, bool* out) {
    flags_[name] = out;
    return *this;
  }
  Options& value(const std::string& name, std::string* out) {
    values_[name] = [out](const std::string& v) { *out = v; };
    return *this;
  }
  Options& value(const std::string& name, int* out) {
    values_[name] = [out, name](const std::string& v) { *out = static_cast<int>(integer(name, v)); };
    return *this;
  }
  Options& value(const std::string& name, int64_t* out) {
    values_[name] = [out, name](const std::string& v) { *out = integer(name, v); };
    return *this;
  }
  Options& value(const std::string& name, double* out) {
    values_[name] = [out, name](const std::string& v) {
      std::size_t used = 0;
      try {
        *out = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != v.size()) throw std::runtime_error(name + " takes a number, got '" + v + "'");
    };
    return *this;
  }
  // `--name a,b,c`: the comma-separated items, each an integer for a list of integers.
  Options& value(const std::string& name, std::vector<std::string>* out) {
    values_[name] = [out](const std::string& v) { *out = split(v); };
    return *this;
  }
  Options& value(const std::string& name, std::vector<int>* out) {
    values_[name] = [out, name](const std::string& v) {
      out->clear();
      for (const auto& item : split(v)) out->push_back(static_cast<int>(integer(name, item)));
    };
    return *this;
  }
  Options& value(const std::string& name, std::vector<int64_t>* out) {
    values_[name] = [out, name](const std::string& v) {
      out->clear();
      for (const auto& item : split(v)) out->push_back(integer(name, item));
    };
    return *this;
  }

  void parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (const auto f = flags_.find(a); f != flags_.end()) {
        *f->second = true;
        continue;
      }
      const auto v = values_.find(a);
      if (v == values_.end()) throw std::runtime_error("unknown option " + a);
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      v->second(argv[++i]);
    }
  }

 private:
  static int64_t integer(const std::string& name, const std::string& v) {
    std::size_t used = 0;
    int64_t out = 0;
    try {
      out = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size()) throw std::runtime_error(name + " takes an integer, got '" + v + "'");
    return out;
  }
  static std::vector<std::string> split(const std::string& v) {
    std::vector<std::string> items;
    std::stringstream list(v);
    for (std::string item; std::getline(list, item, ',');) items.push_back(item);
    return items;
  }

  std::map<std::string, bool*> flags_;
  std::map<std::string, std::function<void(const std::string&)>> values_;
};

// Throws "--case must be sd3 or flux, got 'x'" unless `value` is one of `allowed`.
inline void require_one_of(const std::string& option, const std::string& value,
                           std::initializer_list<const char*> allowed) {
  std::string list;
  std::size_t i = 0;
  for (const char* a : allowed) {
    if (value == a) return;
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + std::string(a);
    ++i;
  }
  throw std::runtime_error(option + " must be " + list + ", got '" + value + "'");
}

// The process's peak resident set so far, in MiB.
inline double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// The measured rounds of a step: wall and process CPU milliseconds, each sorted, and the peak resident set after
// every round (warm-up rounds included, in order).
struct StepTimes {
  std::vector<double> wall_ms, cpu_ms, rss_mib;
  double median_ms() const { return wall_ms[wall_ms.size() / 2]; }
  double min_ms() const { return wall_ms.front(); }
  double max_ms() const { return wall_ms.back(); }
  double median_cpu_ms() const { return cpu_ms[cpu_ms.size() / 2]; }
  // Sums over the measured rounds, for a mean or a throughput.
  double total_ms() const { return std::accumulate(wall_ms.begin(), wall_ms.end(), 0.0); }
  double total_cpu_ms() const { return std::accumulate(cpu_ms.begin(), cpu_ms.end(), 0.0); }
};

// Runs `step` `warmup` times unmeasured, then `iters` (at least 1) times measured.
template <typename Step>
StepTimes time_steps(int warmup, int iters, Step&& step) {
  if (iters < 1 || warmup < 0) throw std::runtime_error("--iters must be at least 1 and --warmup at least 0");
  StepTimes t;
  for (int i = 0; i < warmup + iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    step();
    const double cpu = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    t.rss_mib.push_back(peak_rss_mib());
    if (i < warmup) continue;
    t.wall_ms.push_back(wall);
    t.cpu_ms.push_back(cpu);
  }
  std::sort(t.wall_ms.begin(), t.wall_ms.end());
  std::sort(t.cpu_ms.begin(), t.cpu_ms.end());
  return t;
}

// A bench's main: an exception ends it with "NAME: message" on stderr and exit code 2.
template <typename Body>
int run_main(const char* name, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  }
}

}  // namespace repa::bench
