#include "core/train/lora_training.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "core/base/error.h"
#include "core/train/config_values.h"
#include "core/train/ema.h"

namespace repa::train {

std::string simpletuner_projector_name(const std::string& name) {
  std::string rest = name;
  for (const char* head : {"projector.", "projectors."}) {
    if (rest.rfind(head, 0) == 0) rest = rest.substr(std::string(head).size());
  }
  if (rest.rfind("norm.", 0) == 0) return "0." + rest.substr(5);
  if (rest.rfind("linear.", 0) == 0) return "1." + rest.substr(7);
  return rest;
}

LoraTraining::LoraTraining(torch::nn::Module& base, const adapters::FamilyLora& family,
                           const adapters::LoraSettings& settings, adapters::TargetSpec targets,
                           adapters::LoraFormat format)
    : base_(base), family_(family), format_(format) {
  // Frozen first: the adapters' own parameters are the only ones the optimizer sees.
  for (auto& p : base_.parameters()) {
    p.set_requires_grad(false);
    base_parameters_ += p.numel();
  }
  lora_ = std::make_unique<adapters::LoraModel>(base_, settings, std::move(targets));
}

std::unique_ptr<LoraTraining> LoraTraining::from_config(const nlohmann::json& config, torch::nn::Module& base,
                                                        const std::string& architecture) {
  if (text_or(config, "model_type", "full") != "lora") return nullptr;
  // A family run adapts its model_family's targets (pixart: to_k, to_q, to_v, to_out.0).
  const auto& family =
      adapters::family_lora(architecture == "family" ? text_or(config, "model_family", "") : architecture);
  const auto settings = adapters::LoraSettings::from_json(config);
  auto targets = adapters::resolve_targets(family, config);
  // The projector trains and is saved beside the adapter, as SimpleTuner's modules_to_save.
  if (flag_or(config, "crepa_enabled", false)) targets.modules_to_save = {"crepa_projector"};
  if (flag_or(config, "urepa_enabled", false)) targets.modules_to_save = {"urepa_projector"};
  const auto format = adapters::parse_lora_format(text_or(config, "lora_format", "diffusers"));
  // The frozen base in the run's weight precision: bf16 on CUDA under mixed_precision bf16 (the forward runs in a bf16
  // autocast region there anyway); fp32 elsewhere. The adapters stay fp32, as peft keeps them.
  const auto params = base.parameters();
  if (!params.empty() && params.front().is_cuda() && text_or(config, "mixed_precision", "no") == "bf16")
    base.to(torch::kBFloat16);
  std::unique_ptr<LoraTraining> out(new LoraTraining(base, family, settings, targets, format));
  const std::string init = text_or(config, "init_lora", "");
  if (!init.empty()) {
    if (!std::filesystem::exists(init)) throw InputError("init_lora '" + init + "' is not a file here");
    auto file = adapters::read_lora_file(init, family, base);
    adapters::load_lora(*out->lora_, file, init);
    out->init_extra_ = std::move(file.extra);
    out->init_path_ = init;
  }
  return out;
}

std::string LoraTraining::describe() const {
  const auto& s = lora_->settings();
  char text[256];
  std::snprintf(text, sizeof(text),
                "LoRA rank %lld alpha %g on %zu modules (%s): %lld trainable of %lld base parameters",
                static_cast<long long>(s.rank), s.effective_alpha(), lora_->adapted_modules().size(),
                s.use_dora ? "DoRA" : "standard", static_cast<long long>(lora_->parameter_count()),
                static_cast<long long>(base_parameters_));
  return text;
}

nlohmann::json LoraTraining::run_started_fields(const std::string& run_dir, int64_t trainable) const {
  const auto& s = lora_->settings();
  const auto& t = lora_->targets();
  return {{"rank", s.rank},
          {"alpha", s.effective_alpha()},
          {"scaling", s.scaling()},
          {"dropout", s.dropout},
          {"dora", s.use_dora},
          {"init", s.init == adapters::LoraInit::Gaussian ? "gaussian" : "default"},
          {"targets", t.is_regex ? nlohmann::json(t.regex) : nlohmann::json(t.names)},
          {"adapted_modules", lora_->adapted_modules().size()},
          {"adapter_parameters", lora_->parameter_count()},
          {"trainable_parameters", trainable},
          {"base_parameters", base_parameters_},
          {"format", adapters::to_string(format_)},
          {"init_lora", init_path_},
          {"adapter_file", (std::filesystem::path(run_dir) / adapters::kLoraFileName).string()}};
}

int LoraTraining::load_projector(torch::nn::Module* projector, const std::string& projector_name) const {
  if (projector == nullptr || init_extra_.empty()) return 0;
  std::map<std::string, torch::Tensor> saved;
  for (const auto& item : init_extra_) {
    if (item.first.rfind(projector_name + ".", 0) == 0)
      saved[item.first.substr(projector_name.size() + 1)] = item.second;
  }
  if (saved.empty()) return 0;
  torch::NoGradGuard no_grad;
  int copied = 0;
  for (auto& item : projector->named_parameters()) {
    const auto it = saved.find(simpletuner_projector_name(item.key()));
    if (it == saved.end()) {
      throw InputError("init_lora '" + init_path_ + "' has a " + projector_name + " without '" +
                       simpletuner_projector_name(item.key()) + "' (another projector kind?)");
    }
    if (it->second.sizes() != item.value().sizes()) {
      throw InputError("init_lora '" + init_path_ + "': " + projector_name + "." + it->first + " has shape " +
                       c10::str(it->second.sizes()) + ", the run's projector " + c10::str(item.value().sizes()));
    }
    item.value().copy_(it->second);
    ++copied;
  }
  return copied;
}

io::NamedTensors LoraTraining::state() const {
  io::NamedTensors out;
  for (const auto& item : lora_->named_parameters()) out.emplace_back(item.first, item.second.detach());
  return out;
}

void LoraTraining::load_state(const io::SafetensorsFile& file) {
  torch::NoGradGuard no_grad;
  for (const auto& item : lora_->named_parameters()) {
    if (!file.contains(item.first)) {
      throw InputError("checkpoint part '" + file.path() + "' lacks the adapter tensor '" + item.first +
                       "' (was the checkpoint written with other LoRA targets or rank?)");
    }
    const auto t = file.tensor(item.first);
    if (t.sizes() != item.second.sizes()) {
      throw InputError("checkpoint part '" + file.path() + "': '" + item.first + "' has shape " + c10::str(t.sizes()) +
                       ", the adapter " + c10::str(item.second.sizes()));
    }
    auto dst = item.second;
    dst.copy_(t);
  }
  if (file.names().size() != lora_->named_parameters().size()) {
    throw InputError("checkpoint part '" + file.path() + "' holds " + std::to_string(file.names().size()) +
                     " adapter tensors, the run's adapter " + std::to_string(lora_->named_parameters().size()));
  }
}

double LoraTraining::base_fingerprint() const {
  torch::NoGradGuard no_grad;
  double sum = 0.0;
  for (const auto& p : base_.parameters()) {
    const auto d = p.detach().to(torch::kCPU, torch::kFloat64);
    sum += d.sum().item<double>() + d.square().sum().item<double>();
  }
  return sum;
}

void LoraTraining::check_base_fingerprint(double saved, const std::string& checkpoint_dir) const {
  const double now = base_fingerprint();
  if (std::abs(now - saved) > 1e-6 * std::max(1.0, std::abs(saved))) {
    throw InputError("checkpoint " + checkpoint_dir +
                     " holds LoRA adapters trained on other base weights (fingerprint " + std::to_string(saved) +
                     " vs " + std::to_string(now) + "); resume with the same pretrained_model_name_or_path and seed");
  }
}

std::string LoraTraining::save(const std::string& dir, torch::nn::Module* projector, const std::string& projector_name,
                               int64_t step) const {
  io::NamedTensors extra;
  if (projector) {
    for (const auto& item : module_state(*projector)) {
      extra.emplace_back(projector_name + "." + simpletuner_projector_name(item.first), item.second);
    }
  }
  // The run-dependent entries SimpleTuner adds after saving (training/save_hooks.py).
  const std::map<std::string, std::string> metadata = {
      {"modelspec.sai_model_spec", "1.0.1"},
      {"modelspec.architecture", family_.family + "/lora"},
      {"modelspec.implementation", "diffusers"},
      {"global_step", std::to_string(step)},
  };
  const auto path = (std::filesystem::path(dir) / adapters::kLoraFileName).string();
  adapters::save_lora_file(path, adapters::lora_file_content(*lora_, family_, format_, extra, metadata));
  return path;
}

}  // namespace repa::train
