#include "core/adapters/lora_targets.h"

#include <regex>

#include "core/base/bounded_json.h"
#include "core/base/error.h"

namespace repa::adapters {
namespace {

const std::vector<std::string> kAttention = {"to_k", "to_q", "to_v", "to_out.0"};
// Flux/Chroma DEFAULT_LORA_TARGET, used by the presets without a branch of their own (mmdit, ...).
const std::vector<std::string> kFluxDefault = {"to_k", "to_q", "to_v", "to_out.0", "to_qkv"};
const std::vector<std::string> kFluxAll = {"to_k",       "to_q",       "to_v",       "to_qkv",   "add_qkv_proj",
                                           "add_k_proj", "add_q_proj", "add_v_proj", "to_out.0", "to_add_out"};
const std::vector<std::string> kFluxContext = {"add_k_proj", "add_q_proj", "add_v_proj", "add_qkv_proj", "to_add_out"};
const std::vector<std::string> kFfs = {"ff.net.0.proj",    "ff.net.2", "ff_context.net.0.proj",
                                       "ff_context.net.2", "proj_mlp", "proj_out"};
// SimpleTuner's DEFAULT_SLIDER_LORA_TARGET (models/common.py:499-512): includes convolutions.
const std::vector<std::string> kSlider = {
    "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",          "attn1.to_qkv",           "proj_in",
    "proj_out",   "conv_in",    "conv_out",   "time_embedding.linear_1", "time_embedding.linear_2"};

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<FamilyLora>& table() {
  static const std::vector<FamilyLora> families = {
      {"sd1x", "unet", ComfyNaming::Kohya, kAttention, false},
      {"sd2x", "unet", ComfyNaming::Kohya, kAttention, false},  // SimpleTuner's SD 2.x class derives from SD 1.x's
      {"sdxl", "unet", ComfyNaming::Kohya, kAttention, false},
      {"sd3", "transformer", ComfyNaming::KeepPrefix, kAttention, false},
      {"flux", "transformer", ComfyNaming::KeepPrefix, kFluxAll, true},
      {"chroma", "transformer", ComfyNaming::DiffusionModelPrefix, kFluxAll, true},
      {"pixart", "transformer", ComfyNaming::KeepPrefix, kAttention, false},
      // The studio's own backbones: the SiT's attention (REPA's checkpoint names) and the class-conditional
      // UNet2DModel's attention blocks (diffusers' names, saved like a UNet).
      {"sit", "transformer", ComfyNaming::KeepPrefix, {"attn.qkv", "attn.proj"}, false},
      {"unet2d", "unet", ComfyNaming::Kohya, kAttention, false},
  };
  return families;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> lora_families() {
  std::vector<std::string> out;
  for (const auto& f : table()) out.push_back(f.family);
  return out;
}

const FamilyLora& family_lora(const std::string& family) {
  for (const auto& f : table()) {
    if (f.family == family) return f;
  }
  throw InputError("LoRA: no target table for model family '" + family + "' (known: " + joined(lora_families()) +
                   "); set peft_lora_target_modules");
}

std::vector<std::string> flux_preset_targets(const std::string& preset, bool chroma) {
  if (preset == "all") return kFluxAll;
  if (preset == "context") return kFluxContext;
  if (preset == "context+ffs") return concat(kFluxContext, {"ff_context.net.0.proj", "ff_context.net.2"});
  if (preset == "all+ffs") return concat(kFluxAll, kFfs);
  if (preset == "all+ffs+embedder") return concat(concat(kFluxAll, kFfs), {"x_embedder"});
  if (preset == "ai-toolkit") {
    // Chroma's copy of the preset has no adaLN entries.
    if (chroma) return concat(kFluxAll, kFfs);
    return concat(concat(kFluxAll, kFfs), {"norm.linear", "norm1.linear", "norm1_context.linear"});
  }
  if (chroma) {
    if (preset == "tiny") return {"to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj"};
    if (preset == "tiny+embedder") return {"to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "x_embedder"};
    // Chroma logs a warning and falls back to its default for every other name.
    return kFluxDefault;
  }
  if (preset == "tiny") return {"single_transformer_blocks.7.proj_out"};
  if (preset == "nano") return {"single_transformer_blocks.7.proj_out", "single_transformer_blocks.20.proj_out"};
  if (preset == "mmdit" || preset == "all+ffs+embedder+controlnet") return kFluxDefault;
  if (preset == "controlnet") {
    throw InputError(
        "config key 'flux_lora_target': 'controlnet' targets a control-net, which the studio does "
        "not train");
  }
  throw InputError("config key 'flux_lora_target': unknown preset '" + preset +
                   "' (expected all, mmdit, context, context+ffs, all+ffs, all+ffs+embedder, ai-toolkit, tiny, "
                   "nano)");
}

TargetSpec resolve_targets(const FamilyLora& family, const nlohmann::json& config) {
  TargetSpec spec;
  const auto given =
      config.contains("peft_lora_target_modules") ? config.at("peft_lora_target_modules") : nlohmann::json();
  nlohmann::json value = given;
  // SimpleTuner takes the option as JSON text; a config may also hold the list itself.
  if (value.is_string()) {
    const auto text = value.get<std::string>();
    auto parsed = try_parse_json_bounded(text);
    value = parsed.is_discarded() || !(parsed.is_array() || parsed.is_string()) ? nlohmann::json(text) : parsed;
  }
  if (!value.is_null() && !(value.is_string() && value.get<std::string>().empty())) {
    if (value.is_string()) {
      spec.is_regex = true;
      spec.regex = value.get<std::string>();
      // std::regex compiles recursively: a pattern of thousands of nested groups would overflow the stack.
      if (spec.regex.size() > 4096)
        throw InputError("config key 'peft_lora_target_modules': the regular expression is " +
                         std::to_string(spec.regex.size()) +
                         " characters long (at most 4096): " + json_excerpt(nlohmann::json(spec.regex)));
      try {
        std::regex check(spec.regex);
      } catch (const std::regex_error& e) {
        throw InputError("config key 'peft_lora_target_modules': " + json_excerpt(nlohmann::json(spec.regex)) +
                         " is not a valid regular expression (" + e.what() + ")");
      }
      return spec;
    }
    if (!value.is_array() || value.empty()) {
      throw InputError("config key 'peft_lora_target_modules': expected a non-empty JSON list of module names, got " +
                       json_excerpt(given));
    }
    for (const auto& item : value) {
      if (!item.is_string() || item.get<std::string>().empty()) {
        throw InputError("config key 'peft_lora_target_modules': every entry must be a module name, got " +
                         json_excerpt(item));
      }
      spec.names.push_back(item.get<std::string>());
    }
    return spec;
  }
  const auto slider = config.contains("slider_lora_target") ? config.at("slider_lora_target") : nlohmann::json();
  if (slider == true || slider == "true") {
    spec.names = kSlider;
    return spec;
  }
  if (family.flux_presets) {
    const auto preset = config.contains("flux_lora_target") && config.at("flux_lora_target").is_string()
                            ? config.at("flux_lora_target").get<std::string>()
                            : std::string("all");
    spec.names = flux_preset_targets(preset, family.family == "chroma");
    return spec;
  }
  spec.names = family.default_targets;
  return spec;
}

bool matches_target(const std::string& path, const TargetSpec& targets) {
  for (const auto& kept : targets.modules_to_save) {
    if (path == kept || path.rfind(kept + ".", 0) == 0) return false;
  }
  if (targets.is_regex) return std::regex_match(path, std::regex(targets.regex));
  for (const auto& name : targets.names) {
    if (path == name) return true;
    if (path.size() > name.size() + 1 && path.compare(path.size() - name.size(), name.size(), name) == 0 &&
        path[path.size() - name.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

}  // namespace repa::adapters
