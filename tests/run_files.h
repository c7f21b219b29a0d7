// Reading what a run wrote, for the training tests: events.jsonl by type, metrics.jsonl rows, one metric per step.
#pragma once
#include <cstddef>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::test {

// Every line of a JSONL file of the run folder, parsed.
inline std::vector<nlohmann::json> jsonl_rows(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The run's events of one type ("sample", "checkpoint", ...), in order.
inline std::vector<nlohmann::json> events_of(const std::string& run_dir, const std::string& type) {
  std::vector<nlohmann::json> out;
  for (auto& e : jsonl_rows(run_dir + "/events.jsonl"))
    if (e.value("type", "") == type) out.push_back(std::move(e));
  return out;
}

inline std::vector<nlohmann::json> metrics_of(const std::string& run_dir) {
  return jsonl_rows(run_dir + "/metrics.jsonl");
}

// One metric of every step ("loss" by default).
inline std::vector<double> losses_of(const std::string& run_dir, const std::string& key = "loss") {
  std::vector<double> out;
  for (const auto& m : metrics_of(run_dir)) out.push_back(m.at(key).get<double>());
  return out;
}

// The mean of v[begin, end).
inline double mean(const std::vector<double>& v, std::size_t begin, std::size_t end) {
  double sum = 0.0;
  for (std::size_t i = begin; i < end; ++i) sum += v[i];
  return sum / static_cast<double>(end - begin);
}

}  // namespace repa::test
