// LoRA in a run (model_type "lora"): the base frozen, adapters on the family's targets (the studio's own
// architectures: sit, unet2d), optionally started from init_lora, their checkpoint part, and the adapter file
// written into the run folder at the end in lora_format, with the alignment projector beside it as SimpleTuner
// saves it (crepa_projector / urepa_projector, LayerNorm + Linear as .0 / .1).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/adapters/lora_file.h"
#include "core/adapters/lora_model.h"
#include "core/io/safetensors.h"

namespace repa::train {

class LoraTraining {
 public:
  // nullptr unless model_type is "lora". Freezes the base (in bf16 on CUDA under mixed_precision bf16). InputError
  // for bad LoRA options, targets that match nothing, or an init_lora file that does not fit.
  static std::unique_ptr<LoraTraining> from_config(const nlohmann::json& config, torch::nn::Module& base,
                                                   const std::string& architecture);

  std::vector<torch::Tensor> parameters() const { return lora_->parameters(); }
  const adapters::LoraModel& lora() const { return *lora_; }
  torch::nn::Module& module() { return lora_->module(); }  // the adapters as one module (EMA)
  int64_t base_parameters() const { return base_parameters_; }
  std::string describe() const;
  // The `lora` object of the run_started event: rank, alpha (effective), scaling, dropout, dora, init, targets (the
  // target list or regex as resolved), adapted_modules, adapter_parameters, trainable_parameters (`trainable`: what
  // the optimizer holds, adapters + projector), base_parameters (frozen), format, init_lora, and adapter_file (where
  // save() writes into `run_dir`).
  nlohmann::json run_started_fields(const std::string& run_dir, int64_t trainable) const;

  // init_lora files carry the projector beside the adapters (modules_to_save): copies `<projector_name>.*` into
  // `projector` when the file has it; returns the number of tensors copied.
  int load_projector(torch::nn::Module* projector, const std::string& projector_name) const;

  // Checkpoint part "lora": the adapters under peft's names. The base is not saved; its fingerprint is kept in
  // the trainer state and compared at resume (a different base would make the adapters meaningless).
  io::NamedTensors state() const;
  void load_state(const io::SafetensorsFile& file);
  double base_fingerprint() const;
  void check_base_fingerprint(double saved, const std::string& checkpoint_dir) const;

  // Writes <dir>/pytorch_lora_weights.safetensors; `projector` is the alignment projector module (or null) and
  // `projector_name` crepa_projector / urepa_projector. Returns the path.
  std::string save(const std::string& dir, torch::nn::Module* projector, const std::string& projector_name,
                   int64_t step) const;

 private:
  LoraTraining(torch::nn::Module& base, const adapters::FamilyLora& family, const adapters::LoraSettings& settings,
               adapters::TargetSpec targets, adapters::LoraFormat format);
  torch::nn::Module& base_;
  adapters::FamilyLora family_;
  adapters::LoraFormat format_;
  std::unique_ptr<adapters::LoraModel> lora_;
  int64_t base_parameters_ = 0;
  io::NamedTensors init_extra_;  // non-LoRA tensors of the init_lora file
  std::string init_path_;
};

// SimpleTuner's name for a projector tensor of ours: "projector.norm.weight" → "0.weight", "projector.linear.bias"
// → "1.bias" (its Sequential(LayerNorm, Linear)); other layouts keep their names below the projector.
std::string simpletuner_projector_name(const std::string& name);

}  // namespace repa::train
