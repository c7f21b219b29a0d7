#include "core/train/alignment.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/config/model_source.h"
#include "core/train/config_values.h"

namespace repa::train {

void Alignment::check_fits(const nlohmann::json& config, const std::string& architecture) {
  const bool crepa = flag_or(config, "crepa_enabled", false);
  const bool urepa = flag_or(config, "urepa_enabled", false);
  // A family run's denoiser is a UNet when its pipeline has unet/ (SD, Kolors), a transformer otherwise.
  const bool family = architecture == "family";
  const auto parts =
      family ? config::family_components(text_or(config, "model_family", "")) : std::vector<std::string>{};
  const bool is_unet = family ? std::count(parts.begin(), parts.end(), "unet") > 0 : architecture != "sit";
  const std::string what = family ? "model_family '" + text_or(config, "model_family", "") + "'"
                                  : "studio.architecture '" + architecture + "'";
  if (crepa && is_unet)
    throw InputError("crepa_enabled is set for a UNet (" + what +
                     "): REPA taps transformer blocks; use urepa_enabled for UNets");
  if (urepa && !is_unet)
    throw InputError("urepa_enabled is set for a transformer (" + what +
                     "): U-REPA taps a UNet's mid block; use crepa_enabled for transformers");
}

Alignment::Alignment(const nlohmann::json& config, const std::string& architecture, int64_t tap_width,
                     int64_t teacher_dim, int64_t max_train_steps, const torch::Device& device) {
  check_fits(config, architecture);
  const bool crepa = flag_or(config, "crepa_enabled", false);
  const bool urepa = flag_or(config, "urepa_enabled", false);
  cls_ = text_or(studio_settings(config), "teacher_tokens", "patch") == "cls";
  if (crepa) {
    repa_ = std::make_unique<align::RepaRegularizer>(align::RepaOptions::from_json(config, max_train_steps), tap_width,
                                                     std::vector<int64_t>{teacher_dim});
    repa_->to(device);
  } else if (urepa) {
    urepa_ = std::make_unique<align::UrepaRegularizer>(align::UrepaOptions::from_json(config, max_train_steps),
                                                       tap_width, std::vector<int64_t>{teacher_dim});
    urepa_->to(device);
  }
}

void Alignment::set_similarity_mean(const std::function<double(double)>& across_ranks) {
  if (repa_) repa_->schedule().set_similarity_mean(across_ranks);
  if (urepa_) urepa_->schedule().set_similarity_mean(across_ranks);
}

align::AlignmentOutput Alignment::compute(const torch::Tensor& tapped, const torch::Tensor& teacher, int64_t step) {
  if (repa_) return repa_->compute(tapped, {teacher}, step);
  if (urepa_) return urepa_->compute(tapped, {teacher}, step);
  return {};
}

double Alignment::planned_weight(int64_t step) const {
  if (repa_) return repa_->schedule().planned_weight(step);
  if (urepa_) return urepa_->schedule().planned_weight(step);
  return 0.0;
}

torch::nn::Module* Alignment::projectors() {
  if (repa_) return repa_->projectors().get();
  if (urepa_) return urepa_->projectors().get();
  return nullptr;
}

std::vector<torch::Tensor> Alignment::parameters() {
  if (repa_) return repa_->parameters();
  if (urepa_) return urepa_->parameters();
  return {};
}

nlohmann::json Alignment::state() const {
  if (repa_) return repa_->state();
  if (urepa_) return urepa_->state();
  return nullptr;
}

void Alignment::load_state(const nlohmann::json& state) {
  if (state.is_null()) return;
  if (repa_) repa_->load_state(state);
  if (urepa_) urepa_->load_state(state);
}

}  // namespace repa::train
