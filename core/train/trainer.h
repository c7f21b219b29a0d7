// The training run: set-up (config → data, caches, model, teacher, alignment, optimizer, resume), the step
// (diffusion loss + scheduled alignment, accumulation, clipping, AdamW, EMA), and the loop around it
// (commands, checkpoints, samples, events, heartbeat). Headless and GUI runs are the same code.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/data/batch_loader.h"
#include "core/diffusion/flow_sigmas.h"
#include "core/diffusion/loss.h"
#include "core/diffusion/objective.h"
#include "core/diffusion/vp_timesteps.h"
#include "core/encoders/teacher.h"
#include "core/train/alignment.h"
#include "core/train/backbone.h"
#include "core/train/caption_conditioning.h"
#include "core/train/distributed.h"
#include "core/train/ema.h"
#include "core/train/gradient_buckets.h"
#include "core/config/family_pipeline.h"
#include "core/train/event_sink.h"
#include "core/train/latent_space.h"
#include "core/train/lora_training.h"
#include "core/train/lr_schedule.h"
#include "core/train/run_control.h"
#include "core/train/run_directory.h"
#include "core/train/training_data.h"

namespace repa::train {

struct TrainerOptions {
  bool events_to_stdout = false;  // --events stdio
  bool progress_bar = false;      // a terminal line with step, losses, it/s and ETA (stderr)
  int command_fd = -1;            // read commands from this descriptor (0 = stdin); -1: none
  bool handle_signals = false;    // SIGINT/SIGTERM → checkpoint and stop
  std::vector<std::string> config_warnings;  // from loading the config (keys dropped): logged at run_started
};

// What one optimizer step produced: the metrics event's payload.
using StepMetrics = nlohmann::json;

class Trainer {
 public:
  // Everything up to the first step; throws InputError for a config or dataset the run cannot use.
  Trainer(nlohmann::json resolved_config, TrainerOptions options = {});
  ~Trainer();

  // Runs to max_train_steps or a stop; returns the exit code (0 finished or stopped, 1 failed).
  int run();

  // One optimizer step (all accumulation micro-batches). Throws Error on a non-finite loss.
  StepMetrics train_step();
  void save_checkpoint();
  std::string write_samples();  // the grid's path

  // Benchmarks: run the teacher on the batch's pixels at every step instead of reading the cache.
  void set_teacher_every_step(bool on);

  // The losses of the next micro-batch exactly as train_step forms them, before any backward (the
  // gradient-flow tests differentiate each part alone). Advances the data loader and the RNG as a step does.
  struct MicroBatchLosses {
    torch::Tensor diffusion;
    align::AlignmentOutput alignment;  // joins the total when alignment.applied
  };
  MicroBatchLosses next_micro_batch_losses();

  Backbone& backbone() { return *backbone_; }
  Alignment& alignment() { return *alignment_; }
  LoraTraining* lora() { return lora_.get(); }  // null unless model_type is "lora"
  int64_t trainable_parameter_count() const;
  encoders::Teacher* teacher() { return teacher_.get(); }  // null without alignment
  const CaptionConditioning* captions() const { return captions_.get(); }  // null unless text-conditioned
  const TrainingData& training_data() const { return data_; }
  const torch::Tensor& time_ids() const { return time_ids_; }  // SDXL: (N, 6) per image, else undefined
  // Tests: sees every batch the loader gives, before the step uses it.
  void set_batch_observer(std::function<void(const data::Batch&)> observer) { batch_observer_ = std::move(observer); }

  // Data parallelism (RANK/WORLD_SIZE in the environment): null in a one-process run.
  DataParallel* data_parallel() { return parallel_.get(); }
  bool is_main_rank() const { return !parallel_ || parallel_->is_main(); }

  int64_t step() const { return step_; }
  const RunDirectory& run_directory() const { return *run_dir_; }
  EventSink& events() { return events_; }

 private:
  void setup();
  void resume(const std::string& checkpoint_dir);
  void handle_commands(bool& stop);
  void heartbeat(bool force = false);
  void set_state(const std::string& state);
  // The finished state: its event and status.json give the `reason` and what the run wrote at its end (`outputs`).
  void set_finished(const std::string& reason, const nlohmann::json& outputs = nlohmann::json::object());
  void report(const std::string& level, const std::string& message);
  // The run's end products, each returning what it wrote ({lora_file} / {pipeline_folder, single_file}; empty on
  // the ranks that write nothing).
  nlohmann::json save_lora_file();
  // A full family run's end: <run>/pipeline/ (diffusers) and, for the SD families, <run>/<run>.safetensors.
  nlohmann::json save_fine_tuned_pipeline();
  torch::nn::Module& averaged_module();  // what the EMA follows: the backbone, or its adapters under LoRA
  // This rank's rows of a tensor drawn for the global batch (every rank draws the same), and such a draw.
  torch::Tensor my_rows(const torch::Tensor& global) const;
  torch::Tensor global_randn_like(const torch::Tensor& local) const;
  int64_t world_size() const { return parallel_ ? parallel_->world_size() : 1; }

  nlohmann::json config_;
  TrainerOptions options_;
  torch::Device device_{torch::kCPU};
  std::unique_ptr<RunDirectory> run_dir_;
  EventSink events_;
  RunControl control_;
  std::unique_ptr<LatentSpace> latent_space_;
  std::unique_ptr<encoders::Teacher> teacher_;
  std::string teacher_description_;
  TrainingData data_;
  std::unique_ptr<CaptionConditioning> captions_;  // captions → text-embedding cache → the step
  std::optional<repa::config::FamilyPipeline> pipeline_;          // text-to-image family runs: the diffusers pipeline folder
  torch::Tensor time_ids_;                          // SDXL: (N, 6) per image
  std::vector<std::string> sample_prompts_;         // text runs: what each sample label stands for
  Conditioning prompt_table_;                       // family runs: the prompts' states (+ negative), for samples
  std::unique_ptr<data::BatchLoader> loader_;
  std::function<void(const data::Batch&)> batch_observer_;
  std::unique_ptr<Backbone> backbone_;
  std::unique_ptr<Alignment> alignment_;
  std::unique_ptr<LoraTraining> lora_;
  std::unique_ptr<ExponentialMovingAverage> ema_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<diffusion::Objective> objective_;
  diffusion::TimestepSampler timestep_sampler_;
  std::optional<diffusion::FlowSigmaSampler> flow_sigmas_;   // flow families: SimpleTuner's sigma sampling and shift
  std::optional<diffusion::VpTimestepSampler> vp_timesteps_;  // VP families: timestep bias, segmented selection
  std::optional<diffusion::VpNoiseSettings> vp_noise_;        // family runs: offset noise, input perturbation
  diffusion::LossConfig loss_config_;
  LrSchedule lr_schedule_;
  std::vector<torch::Tensor> trainable_;
  std::unique_ptr<DataParallel> parallel_;
  std::unique_ptr<GradientBuckets> gradient_buckets_;
  std::string main_run_path_;   // rank 0's run folder (the other ranks log under its ranks/)
  double label_dropout_ = 0.0;  // SiT's class dropout, drawn here for the global batch under data parallelism

  int64_t step_ = 0;  // optimizer steps done
  int64_t max_steps_ = 0;
  int64_t accumulation_ = 1;
  int64_t batch_size_ = 1;
  double max_grad_norm_ = 0.0;
  int64_t checkpoint_interval_ = 0, keep_checkpoints_ = 0, sample_interval_ = 0;
  bool teacher_every_step_ = false;
  bool random_flip_ = false;
  std::string state_;
  std::string last_checkpoint_;
  std::chrono::steady_clock::time_point started_, last_heartbeat_;
};

}  // namespace repa::train
