// The run's alignment regularizer, whichever the config asks for: REPA (crepa_*) on a transformer's tapped
// hidden states or U-REPA (urepa_*) on a UNet's mid block, each with its projector(s) and coefficient
// schedule. Off when neither is enabled.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/align/repa_regularizer.h"
#include "core/align/urepa_regularizer.h"

namespace repa::train {

class Alignment {
 public:
  // tap_width: the backbone's tapped width; teacher_dim: the teacher's token width. Throws InputError when
  // the regularizer does not fit the architecture (crepa_* on a UNet, urepa_* on a SiT).
  Alignment(const nlohmann::json& config, const std::string& architecture, int64_t tap_width, int64_t teacher_dim,
            int64_t max_train_steps, const torch::Device& device);

  // The constructor's fit check alone, so a run stops before it loads a teacher and fills caches.
  static void check_fits(const nlohmann::json& config, const std::string& architecture);

  bool enabled() const { return repa_ || urepa_; }
  const char* name() const { return repa_ ? "crepa" : urepa_ ? "urepa" : ""; }
  bool uses_cls_token() const { return cls_; }

  // tapped: SiT (B,S,D) or UNet (B,C,h,w); teacher (B,N,D) patch tokens or (B,D) CLS tokens.
  align::AlignmentOutput compute(const torch::Tensor& tapped, const torch::Tensor& teacher, int64_t step);
  // What the planned schedule gives at `step` (for the log and the first metrics).
  double planned_weight(int64_t step) const;

  // Data parallelism: the schedule folds in the similarity's mean over the ranks (CoefficientSchedule).
  void set_similarity_mean(const std::function<double(double)>& across_ranks);

  torch::nn::Module* projectors();  // nullptr when off
  std::vector<torch::Tensor> parameters();
  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  std::unique_ptr<align::RepaRegularizer> repa_;
  std::unique_ptr<align::UrepaRegularizer> urepa_;
  bool cls_ = false;
};

}  // namespace repa::train
