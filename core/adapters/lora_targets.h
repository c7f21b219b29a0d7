// Which modules a LoRA wraps: each family's default target set (SimpleTuner's, tests/fixtures/LORA.md §2),
// Flux's and Chroma's `flux_lora_target` presets, the `peft_lora_target_modules` override, and peft's rule for
// matching a target against a module path.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::adapters {

// How the ComfyUI export names tensors (SimpleTuner's training/lora_format.py).
enum class ComfyNaming {
  Kohya,                 // UNets: lora_unet_<path with . → _>.lora_down/.lora_up.weight + .alpha
  KeepPrefix,            // DiTs that keep `transformer.`: <prefix>.<path>.lora_A/.lora_B.weight + .alpha
  DiffusionModelPrefix,  // Chroma: the prefix becomes `diffusion_model.`
};

struct FamilyLora {
  std::string family;     // model_family, or the studio's own architectures "sit" / "unet2d"
  std::string component;  // "unet" or "transformer": the prefix of the saved names and of the header keys
  ComfyNaming comfyui = ComfyNaming::KeepPrefix;
  std::vector<std::string> default_targets;
  bool flux_presets = false;  // flux_lora_target applies (Flux, Chroma)
};

// The table of families; InputError naming `family` and the known ones for anything else.
const FamilyLora& family_lora(const std::string& family);
std::vector<std::string> lora_families();

// What peft receives as target_modules: a list (suffix match) or one regular expression (full match).
struct TargetSpec {
  std::vector<std::string> names;
  std::string regex;
  bool is_regex = false;
  std::vector<std::string> modules_to_save;  // never adapted (peft skips modules inside them)
};

// flux_lora_target presets (Flux when chroma = false); InputError naming the preset when unknown.
std::vector<std::string> flux_preset_targets(const std::string& preset, bool chroma);

// SimpleTuner's precedence: peft_lora_target_modules (a JSON list, or a string taken as a regular expression as
// peft does) > slider_lora_target > the family's flux_lora_target preset > the family default.
TargetSpec resolve_targets(const FamilyLora& family, const nlohmann::json& config);

// peft's check_target_module_exists: a string target is a full regex match of the module path; a list matches
// when the path equals a name or ends with "." + name. Paths inside modules_to_save never match.
bool matches_target(const std::string& module_path, const TargetSpec& targets);

}  // namespace repa::adapters
