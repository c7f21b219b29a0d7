// The alignment coefficient over training: warm-up, constant/linear/cosine/polynomial decay, a step cut-off
// and a similarity-EMA threshold. Reproduces SimpleTuner's CrepaScheduler, which serves both the crepa_*
// (REPA) and urepa_* (U-REPA) keys.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace repa::align {

enum class ScheduleShape { Constant, Linear, Cosine, Polynomial };
enum class ThresholdMode { Permanent, Recoverable };

struct ScheduleConfig {
  ScheduleShape shape = ScheduleShape::Constant;
  double lambda = 0.5;                         // the base coefficient, reached at the end of warm-up
  int64_t warmup_steps = 0;                    // linear ramp 0 → lambda over steps [0, warmup_steps)
  int64_t decay_end_step = 0;                  // `decay_steps`, or max_train_steps when that is 0
  double lambda_end = 0.0;                     // the value decay arrives at
  double power = 1.0;                          // polynomial exponent
  int64_t cutoff_step = 0;                     // weight 0 from this step on; 0 = never
  std::optional<double> similarity_threshold;  // weight 0 while the similarity EMA is at or above it
  double similarity_ema_decay = 0.99;
  ThresholdMode threshold_mode = ThresholdMode::Permanent;

  // Reads `<prefix>_lambda`, `_scheduler`, `_warmup_steps`, `_decay_steps`, `_lambda_end`, `_power`,
  // `_cutoff_step`, `_similarity_threshold`, `_similarity_ema_decay`, `_threshold_mode` from a flat
  // SimpleTuner config. Missing and null keys take SimpleTuner's defaults (a null lambda is 0.5: SimpleTuner's
  // config loader drops null values, so its argparse default applies); a zero power is 1, as SimpleTuner's
  // `power or 1.0` reads it. Numbers may be given as strings. Throws InputError naming the key on a wrong
  // type or an unknown choice.
  static ScheduleConfig from_json(const nlohmann::json& config, const std::string& prefix, int64_t max_train_steps);
};

std::string to_string(ScheduleShape shape);
std::string to_string(ThresholdMode mode);

class CoefficientSchedule {
 public:
  explicit CoefficientSchedule(ScheduleConfig config);

  // The weight for `step`, as SimpleTuner's get_weight: folds `similarity` (when given) into the EMA
  // first, then applies the cut-offs (latching in permanent mode), then the schedule. Stateful.
  double weight(int64_t step, std::optional<double> similarity = std::nullopt);

  // The weight the schedule plans for `step` with no similarity feedback (warm-up, decay, step cut-off);
  // changes nothing. This is the curve a user sees before a run.
  double planned_weight(int64_t step) const;

  // The weight before any cut-off: warm-up then decay.
  double scheduled_weight(int64_t step) const;

  // Whether the cut-off has latched (permanent mode; recoverable mode clears it once conditions pass).
  bool cutoff() const { return cutoff_triggered_; }
  std::optional<double> similarity_ema() const { return similarity_ema_; }
  const ScheduleConfig& config() const { return config_; }

  // Data parallelism: the similarity a step folds in becomes its mean over the ranks (so every rank's EMA and
  // cut-off stay the same, as with one process and the whole batch).
  void set_similarity_mean(std::function<double(double)> across_ranks) { across_ranks_ = std::move(across_ranks); }

  // The mutable part (similarity EMA, latched cut-off), to save with a checkpoint and restore on resume.
  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  bool cutoff_conditions_hold(int64_t step) const;

  ScheduleConfig config_;
  std::optional<double> similarity_ema_;
  bool cutoff_triggered_ = false;
  std::function<double(double)> across_ranks_;
};

}  // namespace repa::align
