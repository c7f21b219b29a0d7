#include "tests/conformance/fixture.h"

#include <map>
#include <sstream>

#include "core/base/error.h"

namespace repa::conformance {

Fixture::Fixture(const std::string& path) : file_(repa::io::SafetensorsFile::open(path)) {
  const auto config = file_.meta("config");
  try {
    config_ = config ? nlohmann::json::parse(*config) : nlohmann::json::object();
  } catch (const nlohmann::json::exception& e) {
    throw InputError("fixture " + path + ": metadata 'config' is not JSON: " + e.what());
  }
  atol_ = std::stod(meta("atol"));
  rtol_ = std::stod(meta("rtol"));
}

std::string Fixture::meta(const std::string& key) const {
  const auto value = file_.meta(key);
  if (!value) throw InputError("fixture " + path() + ": metadata '" + key + "' is missing");
  return *value;
}

std::string Fixture::meta_or(const std::string& key, const std::string& fallback) const {
  return file_.meta(key).value_or(fallback);
}

std::vector<std::string> Fixture::names_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& name : file_.names())
    if (name.rfind(prefix, 0) == 0) out.push_back(name.substr(prefix.size()));
  return out;
}

void Comparison::check(const std::string& name, const torch::Tensor& got_in, const torch::Tensor& want_in) {
  ++checked_;
  auto got = got_in.detach().to(torch::kCPU, torch::kFloat64);
  auto want = want_in.detach().to(torch::kCPU, torch::kFloat64);
  if (got.sizes() != want.sizes()) {
    // A scalar stored as shape [1] (or []) compares with one element on the other side.
    if (got.numel() == want.numel()) {
      got = got.reshape(want.sizes());
    } else {
      std::ostringstream msg;
      msg << name << ": shape " << got.sizes() << ", expected " << want.sizes();
      failures_.push_back(msg.str());
      return;
    }
  }
  if (want.numel() == 0) return;
  const auto both_nan = torch::isnan(got) & torch::isnan(want);
  const auto diff = torch::where(both_nan, torch::zeros_like(got), (got - want).abs());
  const auto bound = atol_ + rtol_ * want.abs();
  const auto bad = torch::isnan(diff) | (diff > torch::where(both_nan, torch::zeros_like(bound), bound));
  const double max_err = torch::nan_to_num(diff, std::numeric_limits<double>::infinity()).max().item<double>();
  max_abs_error_ = std::max(max_abs_error_, max_err);
  const int64_t n_bad = bad.sum().item<int64_t>();
  if (n_bad > 0) {
    std::ostringstream msg;
    msg << name << ": " << n_bad << " of " << want.numel() << " elements outside tolerance, max abs error "
        << max_err;
    failures_.push_back(msg.str());
  }
}

namespace {
std::map<std::string, KindCheck>& kinds() {
  static std::map<std::string, KindCheck> registry;
  return registry;
}
}  // namespace

bool register_kind(const std::string& kind, KindCheck check) {
  kinds()[kind] = std::move(check);
  return true;
}

const KindCheck* find_kind(const std::string& kind) {
  const auto it = kinds().find(kind);
  return it == kinds().end() ? nullptr : &it->second;
}

}  // namespace repa::conformance
