#include "core/adapters/lora_file.h"

#include <algorithm>
#include <set>

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa::adapters {
namespace {

const char* const kMetadataKey = "lora_adapter_metadata";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::string kohya_stem(const std::string& path) {
  std::string out = "lora_unet_" + path;
  std::replace(out.begin() + 10, out.end(), '.', '_');
  return out;
}

std::string comfy_prefix(const FamilyLora& family) {
  return family.comfyui == ComfyNaming::DiffusionModelPrefix ? "diffusion_model" : family.component;
}

torch::Tensor saved(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU).contiguous().clone();
}

std::string dump_config(const nlohmann::json& config, const std::string& prefix) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& item : config.items()) out[prefix + item.key()] = item.value();
  return out.dump(2);
}

double layer_alpha(const LoraLayerImpl& layer) {
  return layer.scaling() * static_cast<double>(layer.rank());
}

}  // namespace

LoraFormat parse_lora_format(const std::string& value) {
  if (value == "diffusers") return LoraFormat::Diffusers;
  if (value == "comfyui") return LoraFormat::ComfyUI;
  throw InputError("config key 'lora_format': unknown value '" + value + "' (expected diffusers or comfyui)");
}

std::string to_string(LoraFormat format) {
  return format == LoraFormat::Diffusers ? "diffusers" : "comfyui";
}

nlohmann::json peft_lora_config(const LoraSettings& settings, const TargetSpec& targets) {
  using json = nlohmann::json;
  json c = json::object();
  for (const char* key : {"alora_invocation_tokens", "arrow_config", "auto_mapping", "base_model_name_or_path",
                          "corda_config", "eva_config", "exclude_modules", "layer_replication", "layers_pattern",
                          "layers_to_transform", "lora_ga_config", "megatron_config", "monteclora_config", "revision",
                          "target_parameters", "task_type", "trainable_token_indices", "use_bdlora", "velora_config"}) {
    c[key] = nullptr;
  }
  c["alpha_pattern"] = json::object();
  c["rank_pattern"] = json::object();
  c["loftq_config"] = json::object();
  c["bias"] = "none";
  for (const char* key :
       {"ensure_weight_tying", "fan_in_fan_out", "inference_mode", "lora_bias", "use_qalora", "use_rslora"}) {
    c[key] = false;
  }
  c["megatron_core"] = "megatron.core";
  c["peft_type"] = "LORA";
  c["peft_version"] = "0.20.0";
  c["qalora_group_size"] = 16;
  c["r"] = settings.rank;
  // SimpleTuner passes the option through (a float) or the rank (an int) when it is unset.
  if (settings.alpha) {
    c["lora_alpha"] = *settings.alpha;
  } else {
    c["lora_alpha"] = settings.rank;
  }
  c["lora_dropout"] = settings.dropout;
  c["init_lora_weights"] = settings.init == LoraInit::Gaussian ? json("gaussian") : json(true);
  c["use_dora"] = settings.use_dora;
  if (targets.is_regex) {
    c["target_modules"] = targets.regex;
  } else {
    std::set<std::string> unique(targets.names.begin(), targets.names.end());
    c["target_modules"] = std::vector<std::string>(unique.begin(), unique.end());
  }
  c["modules_to_save"] = targets.modules_to_save.empty() ? json(nullptr) : json(targets.modules_to_save);
  return c;
}

LoraFileContent lora_file_content(const LoraModel& lora, const FamilyLora& family, LoraFormat format,
                                  const io::NamedTensors& extra,
                                  const std::map<std::string, std::string>& extra_metadata) {
  LoraFileContent out;
  const auto config = peft_lora_config(lora.settings(), lora.targets());
  const std::string c = family.component;
  out.metadata["format"] = "pt";
  if (format == LoraFormat::Diffusers) {
    for (const auto& item : lora.named_parameters()) out.tensors.emplace_back(c + "." + item.first, saved(item.second));
    for (const auto& item : extra) out.tensors.emplace_back(c + "." + item.first, saved(item.second));
    out.metadata[kMetadataKey] = dump_config(config, c + ".");
  } else {
    const bool kohya = family.comfyui == ComfyNaming::Kohya;
    const std::string p = kohya ? c : comfy_prefix(family);
    for (const auto& path : lora.adapted_modules()) {
      const auto layer = lora.layer(path);
      const auto alpha = torch::tensor(layer_alpha(*layer), torch::kFloat32).reshape({});
      if (kohya) {
        const auto stem = kohya_stem(path);
        out.tensors.emplace_back(stem + ".lora_down.weight", saved(layer->lora_A));
        out.tensors.emplace_back(stem + ".lora_up.weight", saved(layer->lora_B));
        out.tensors.emplace_back(stem + ".alpha", alpha);
      } else {
        out.tensors.emplace_back(p + "." + path + ".lora_A.weight", saved(layer->lora_A));
        out.tensors.emplace_back(p + "." + path + ".lora_B.weight", saved(layer->lora_B));
        out.tensors.emplace_back(p + "." + path + ".alpha", alpha);
      }
      // Names the conversion does not know keep their diffusers form.
      if (layer->magnitude.defined()) {
        out.tensors.emplace_back(p + "." + path + ".lora_magnitude_vector", saved(layer->magnitude));
      }
    }
    for (const auto& item : extra) out.tensors.emplace_back(p + "." + item.first, saved(item.second));
    out.metadata[kMetadataKey] = dump_config(config, "");
  }
  for (const auto& item : extra_metadata) out.metadata[item.first] = item.second;
  return out;
}

void save_lora_file(const std::string& path, const LoraFileContent& content) {
  io::save_safetensors(path, content.tensors, content.metadata);
}

LoraFile read_lora_file(const std::string& path, const FamilyLora& family, torch::nn::Module& model) {
  return read_lora_file(path, family, adaptable_modules(model));
}

LoraFile read_lora_file(const std::string& path, const FamilyLora& family, const std::vector<std::string>& modules) {
  const auto file = io::SafetensorsFile::open(path);
  LoraFile out;
  std::map<std::string, std::string> kohya;
  for (const auto& m : modules) kohya[kohya_stem(m)] = m;

  nlohmann::json header;
  std::string header_prefix;
  if (const auto meta = file.meta(kMetadataKey)) {
    std::string why;
    header = try_parse_json_bounded(*meta, &why);
    if (header.is_discarded() || !header.is_object()) {
      throw InputError("LoRA file '" + path + "': header entry " + kMetadataKey + " is not a JSON object" +
                       (why.empty() ? std::string() : " (" + why + ")"));
    }
    if (header.contains(family.component + ".r")) header_prefix = family.component + ".";
  }
  auto header_value = [&](const std::string& key) {
    const auto k = header_prefix + key;
    return header.is_object() && header.contains(k) ? header.at(k) : nlohmann::json();
  };

  bool saw_comfy_alpha = false, saw_kohya = false;
  for (const auto& name : file.names()) {
    std::string module, part;
    const auto prefixes = {family.component + ".", std::string("diffusion_model.")};
    std::string rest;
    for (const auto& prefix : prefixes) {
      if (starts_with(name, prefix)) rest = name.substr(prefix.size());
    }
    if (starts_with(name, "lora_unet_")) {
      const auto dot = name.find('.');
      const auto stem = name.substr(0, dot);
      const auto it = kohya.find(stem);
      if (it == kohya.end()) {
        throw InputError("LoRA file '" + path + "': tensor '" + name + "' names no Linear or Conv2d of the model");
      }
      module = it->second;
      part = dot == std::string::npos ? "" : name.substr(dot + 1);
      saw_kohya = true;
    } else if (!rest.empty()) {
      for (const char* suffix : {".lora_A.weight", ".lora_B.weight", ".lora_down.weight", ".lora_up.weight",
                                 ".lora_magnitude_vector", ".alpha"}) {
        if (ends_with(rest, suffix)) {
          module = rest.substr(0, rest.size() - std::string(suffix).size());
          part = std::string(suffix).substr(1);
          break;
        }
      }
      if (module.empty()) {
        out.extra.emplace_back(rest, file.tensor(name));
        continue;
      }
    } else {
      throw InputError("LoRA file '" + path + "': tensor '" + name + "' is not a LoRA tensor of the " +
                       family.component + " (expected names starting with " + family.component +
                       ". or lora_unet_; text-encoder LoRAs are not supported)");
    }
    auto& entry = out.modules[module];
    const auto t = file.tensor(name);
    if (part == "lora_A.weight" || part == "lora_down.weight") {
      entry.lora_A = t;
    } else if (part == "lora_B.weight" || part == "lora_up.weight") {
      entry.lora_B = t;
    } else if (part == "lora_magnitude_vector") {
      entry.magnitude = t;
    } else if (part == "alpha") {
      if (t.numel() != 1) throw InputError("LoRA file '" + path + "': '" + name + "' should hold one value");
      entry.alpha = t.to(torch::kFloat64).item<double>();
      saw_comfy_alpha = true;
    } else {
      throw InputError("LoRA file '" + path + "': tensor '" + name + "' has an unknown LoRA part '" + part + "'");
    }
  }
  out.format = saw_kohya || saw_comfy_alpha ? LoraFormat::ComfyUI : LoraFormat::Diffusers;
  const auto alpha_pattern = header_value("alpha_pattern");
  const auto header_alpha = header_value("lora_alpha");
  for (auto& item : out.modules) {
    auto& m = item.second;
    if (!m.lora_A.defined() || !m.lora_B.defined()) {
      throw InputError("LoRA file '" + path + "': module '" + item.first + "' lacks its " +
                       (m.lora_A.defined() ? "lora_B (lora_up)" : "lora_A (lora_down)") + " tensor");
    }
    if (m.lora_A.size(0) != m.lora_B.size(1)) {
      throw InputError("LoRA file '" + path + "': module '" + item.first + "' has lora_A rows " +
                       std::to_string(m.lora_A.size(0)) + " but lora_B columns " + std::to_string(m.lora_B.size(1)));
    }
    out.rank = std::max(out.rank, m.lora_A.size(0));
    if (m.magnitude.defined()) out.use_dora = true;
    // A .alpha tensor wins; otherwise the header (peft's alpha_pattern, then lora_alpha), as diffusers reads it.
    if (!m.alpha) {
      if (alpha_pattern.is_object() && alpha_pattern.contains(item.first) && alpha_pattern.at(item.first).is_number()) {
        m.alpha = alpha_pattern.at(item.first).get<double>();
      } else if (header_alpha.is_number()) {
        m.alpha = header_alpha.get<double>();
      }
    }
  }
  if (out.modules.empty()) throw InputError("LoRA file '" + path + "' holds no LoRA tensors");
  return out;
}

void load_lora(LoraModel& lora, const LoraFile& file, const std::string& origin) {
  std::vector<std::string> missing, unexpected;
  const auto& adapted = lora.adapted_modules();
  for (const auto& path : adapted) {
    if (!file.modules.count(path)) missing.push_back(path);
  }
  for (const auto& item : file.modules) {
    if (!std::binary_search(adapted.begin(), adapted.end(), item.first)) unexpected.push_back(item.first);
  }
  auto list = [](const std::vector<std::string>& names) {
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < 6; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > 6) s += ", ... (" + std::to_string(names.size()) + ")";
    return s;
  };
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = "LoRA file '" + origin + "' does not fit the adapter the targets build:";
    if (!missing.empty()) msg += " adapted modules missing from the file: " + list(missing) + ";";
    if (!unexpected.empty()) msg += " modules in the file that the targets do not adapt: " + list(unexpected) + ";";
    throw InputError(msg + " check peft_lora_target_modules / flux_lora_target");
  }
  torch::NoGradGuard no_grad;
  std::set<double> alphas;
  for (const auto& path : adapted) {
    const auto& m = file.modules.at(path);
    auto layer = lora.layer(path);
    auto copy = [&](torch::Tensor& dst, const torch::Tensor& src, const char* what) {
      if (!src.defined()) {
        throw InputError("LoRA file '" + origin + "': module '" + path + "' has no " + what +
                         (std::string(what) == "lora_magnitude_vector" ? " (the run has use_dora on)" : ""));
      }
      if (dst.sizes() != src.sizes()) {
        throw InputError("LoRA file '" + origin + "': " + path + "." + what + " has shape " + c10::str(src.sizes()) +
                         " but the adapter has " + c10::str(dst.sizes()) + " (lora_rank " +
                         std::to_string(lora.settings().rank) + ")");
      }
      dst.copy_(src);
    };
    copy(layer->lora_A, m.lora_A, "lora_A");
    copy(layer->lora_B, m.lora_B, "lora_B");
    if (layer->magnitude.defined()) {
      copy(layer->magnitude, m.magnitude, "lora_magnitude_vector");
    } else if (m.magnitude.defined()) {
      throw InputError("LoRA file '" + origin + "' is a DoRA (lora_magnitude_vector tensors); set use_dora");
    }
    const double alpha = m.alpha ? *m.alpha : lora.settings().effective_alpha();
    layer->set_alpha(alpha);
    alphas.insert(alpha);
  }
  if (alphas.size() == 1 && *alphas.begin() != lora.settings().effective_alpha()) lora.set_alpha(*alphas.begin());
}

TargetSpec targets_of(const LoraFile& file) {
  TargetSpec spec;
  for (const auto& item : file.modules) spec.names.push_back(item.first);
  return spec;
}

}  // namespace repa::adapters
