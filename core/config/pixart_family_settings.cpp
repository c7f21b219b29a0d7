#include "core/config/pixart_family_settings.h"

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa::config {

nlohmann::json with_pixart_family_rules(const nlohmann::json& config, const FamilyPipeline& pipeline) {
  if (pipeline.family != "pixart") return config;
  nlohmann::json out = config;
  out["tokenizer_max_length"] = 300;
  const auto norm = out.find("max_grad_norm");
  const bool unset = norm == out.end() || norm->is_null();
  if (!unset && !norm->is_number()) throw InputError("max_grad_norm must be a number, got " + json_excerpt(*norm));
  const auto knows = out.find("i_know_what_i_am_doing");
  const bool override_allowed = knows != out.end() && knows->is_boolean() && knows->get<bool>();
  if (unset || (norm->get<double>() > 0.01 && !override_allowed)) out["max_grad_norm"] = 0.01;
  return out;
}

}  // namespace repa::config
