#include "core/align/coefficient_schedule.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>

#include "core/align/config_values.h"
#include "core/base/error.h"

namespace repa::align {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

ScheduleShape parse_shape(const std::string& key, const std::string& raw) {
  const std::string value = lowered(raw);
  if (value.empty() || value == "constant") return ScheduleShape::Constant;
  if (value == "linear") return ScheduleShape::Linear;
  if (value == "cosine") return ScheduleShape::Cosine;
  if (value == "polynomial") return ScheduleShape::Polynomial;
  throw InputError("config key '" + key + "': unknown scheduler '" + raw +
                   "', expected one of constant, linear, cosine, polynomial");
}

ThresholdMode parse_mode(const std::string& key, const std::string& raw) {
  const std::string value = lowered(raw);
  if (value.empty() || value == "permanent") return ThresholdMode::Permanent;
  if (value == "recoverable") return ThresholdMode::Recoverable;
  throw InputError("config key '" + key + "': unknown threshold mode '" + raw + "', expected permanent or recoverable");
}

}  // namespace

std::string to_string(ScheduleShape shape) {
  switch (shape) {
    case ScheduleShape::Constant:
      return "constant";
    case ScheduleShape::Linear:
      return "linear";
    case ScheduleShape::Cosine:
      return "cosine";
    case ScheduleShape::Polynomial:
      return "polynomial";
  }
  return "constant";
}

std::string to_string(ThresholdMode mode) {
  return mode == ThresholdMode::Recoverable ? "recoverable" : "permanent";
}

ScheduleConfig ScheduleConfig::from_json(const nlohmann::json& config, const std::string& prefix,
                                         int64_t max_train_steps) {
  namespace cv = config_values;
  const auto key = [&](const char* name) { return prefix + "_" + name; };
  ScheduleConfig out;
  out.shape = parse_shape(key("scheduler"), cv::text(config, key("scheduler")).value_or("constant"));
  out.lambda = cv::number(config, key("lambda")).value_or(0.5);
  out.warmup_steps = cv::integer(config, key("warmup_steps")).value_or(0);
  const int64_t decay_steps = cv::integer(config, key("decay_steps")).value_or(0);
  out.decay_end_step = decay_steps > 0 ? decay_steps : max_train_steps;
  out.lambda_end = cv::number(config, key("lambda_end")).value_or(0.0);
  // SimpleTuner reads the power as `value or 1.0`, so an explicit 0 also means 1.
  const double power = cv::number(config, key("power")).value_or(1.0);
  out.power = power == 0.0 ? 1.0 : power;
  out.cutoff_step = cv::integer(config, key("cutoff_step")).value_or(0);
  out.similarity_threshold = cv::number(config, key("similarity_threshold"));
  out.similarity_ema_decay = cv::number(config, key("similarity_ema_decay")).value_or(0.99);
  out.threshold_mode = parse_mode(key("threshold_mode"), cv::text(config, key("threshold_mode")).value_or("permanent"));
  if (out.warmup_steps < 0)
    throw InputError("config key '" + key("warmup_steps") + "': must be >= 0, got " + std::to_string(out.warmup_steps));
  return out;
}

CoefficientSchedule::CoefficientSchedule(ScheduleConfig config) : config_(std::move(config)) {}

double CoefficientSchedule::scheduled_weight(int64_t step) const {
  const auto& c = config_;
  // Warm-up applies to every shape, so step 0 of a warm-up is weight 0.
  if (c.warmup_steps > 0 && step < c.warmup_steps)
    return c.lambda * (static_cast<double>(step) / static_cast<double>(c.warmup_steps));
  if (c.shape == ScheduleShape::Constant) return c.lambda;

  const double decay_step = static_cast<double>(step - c.warmup_steps);
  const double decay_span = static_cast<double>(std::max<int64_t>(c.decay_end_step - c.warmup_steps, 1));
  const double progress = std::min(decay_step / decay_span, 1.0);
  switch (c.shape) {
    case ScheduleShape::Linear:
      return c.lambda + (c.lambda_end - c.lambda) * progress;
    case ScheduleShape::Cosine:
      return c.lambda_end + (c.lambda - c.lambda_end) * (1.0 + std::cos(kPi * progress)) / 2.0;
    case ScheduleShape::Polynomial:
      return (c.lambda - c.lambda_end) * std::pow(1.0 - progress, c.power) + c.lambda_end;
    case ScheduleShape::Constant:
      break;
  }
  return c.lambda;
}

bool CoefficientSchedule::cutoff_conditions_hold(int64_t step) const {
  if (config_.cutoff_step > 0 && step >= config_.cutoff_step) return true;
  return config_.similarity_threshold && similarity_ema_ && *similarity_ema_ >= *config_.similarity_threshold;
}

double CoefficientSchedule::weight(int64_t step, std::optional<double> similarity) {
  if (similarity && across_ranks_) similarity = across_ranks_(*similarity);
  if (similarity) {
    similarity_ema_ = similarity_ema_ ? config_.similarity_ema_decay * *similarity_ema_ +
                                            (1.0 - config_.similarity_ema_decay) * *similarity
                                      : *similarity;
  }
  const bool permanent = config_.threshold_mode == ThresholdMode::Permanent;
  if (cutoff_triggered_ && permanent) return 0.0;
  if (cutoff_conditions_hold(step)) {
    if (permanent) cutoff_triggered_ = true;
    return 0.0;
  }
  cutoff_triggered_ = false;  // recoverable: conditions no longer hold
  return scheduled_weight(step);
}

double CoefficientSchedule::planned_weight(int64_t step) const {
  if (config_.cutoff_step > 0 && step >= config_.cutoff_step) return 0.0;
  return scheduled_weight(step);
}

nlohmann::json CoefficientSchedule::state() const {
  return {{"similarity_ema", similarity_ema_ ? nlohmann::json(*similarity_ema_) : nlohmann::json(nullptr)},
          {"cutoff_triggered", cutoff_triggered_}};
}

void CoefficientSchedule::load_state(const nlohmann::json& state) {
  if (!state.is_object() || !state.contains("similarity_ema") || !state.contains("cutoff_triggered"))
    throw InputError(
        "coefficient schedule state: expected an object with 'similarity_ema' and 'cutoff_triggered', got " +
        state.dump());
  const auto& ema = state.at("similarity_ema");
  const auto& latched = state.at("cutoff_triggered");
  if (!(ema.is_null() || ema.is_number()) || !latched.is_boolean())
    throw InputError(
        "coefficient schedule state: 'similarity_ema' must be a number or null and 'cutoff_triggered' "
        "a boolean, got " +
        state.dump());
  similarity_ema_ = ema.is_null() ? std::nullopt : std::optional<double>(ema.get<double>());
  cutoff_triggered_ = latched.get<bool>();
}

}  // namespace repa::align
