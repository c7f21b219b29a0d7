// A conformance fixture (one safetensors file from a reference implementation) and the comparison rule
// |got - want| <= atol + rtol * |want| that its metadata prescribes.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace repa::conformance {

class Fixture {
 public:
  explicit Fixture(const std::string& path);

  const std::string& path() const { return file_.path(); }
  std::string kind() const { return meta("kind"); }
  std::string meta(const std::string& key) const;  // throws when missing
  std::string meta_or(const std::string& key, const std::string& fallback) const;
  const nlohmann::json& config() const { return config_; }
  double atol() const { return atol_; }
  double rtol() const { return rtol_; }

  bool has(const std::string& name) const { return file_.contains(name); }
  torch::Tensor tensor(const std::string& name) const { return file_.tensor(name); }
  // Names with a given prefix ("param." → the weights), prefix stripped.
  std::vector<std::string> names_with_prefix(const std::string& prefix) const;
  const repa::io::SafetensorsFile& file() const { return file_; }

 private:
  repa::io::SafetensorsFile file_;
  nlohmann::json config_;
  double atol_ = 0.0;
  double rtol_ = 0.0;
};

// Accumulates comparisons of computed tensors against the fixture's expected ones.
class Comparison {
 public:
  Comparison(double atol, double rtol) : atol_(atol), rtol_(rtol) {}
  // Compares in float64; NaN matches NaN. Shape mismatches fail and are named.
  void check(const std::string& name, const torch::Tensor& got, const torch::Tensor& want);
  bool passed() const { return failures_.empty(); }
  double max_abs_error() const { return max_abs_error_; }
  const std::vector<std::string>& failures() const { return failures_; }
  int checked() const { return checked_; }

 private:
  double atol_, rtol_;
  double max_abs_error_ = 0.0;
  int checked_ = 0;
  std::vector<std::string> failures_;
};

using KindCheck = std::function<Comparison(const Fixture&)>;

// Thrown by a checker for a fixture whose kind it knows but which needs a part still being built (e.g. a
// lora_adapter fixture on a backbone that has not landed): the runner prints PENDING with the reason, never
// PASS. Everything the checker can check, it checks.
struct PendingFixture : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Registers the checker of a fixture kind; used through REPA_CONFORMANCE_KIND in kind_*.cpp files.
bool register_kind(const std::string& kind, KindCheck check);
const KindCheck* find_kind(const std::string& kind);

}  // namespace repa::conformance

#define REPA_CONFORMANCE_CONCAT_(a, b) a##b
#define REPA_CONFORMANCE_CONCAT(a, b) REPA_CONFORMANCE_CONCAT_(a, b)
#define REPA_CONFORMANCE_KIND(kind, fn) \
  static const bool REPA_CONFORMANCE_CONCAT(repa_kind_registered_, __LINE__) = ::repa::conformance::register_kind(kind, fn)
