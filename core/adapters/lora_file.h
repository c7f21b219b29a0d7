// LoRA files as SimpleTuner writes them (tests/fixtures/LORA.md §4) and reads them back (`init_lora`, merge):
//   diffusers  pytorch_lora_weights.safetensors: <c>.<module>.lora_A.weight / .lora_B.weight, no alpha tensor;
//              header `lora_adapter_metadata` = peft's LoraConfig dict with every key prefixed "<c>." (c = unet |
//              transformer), json.dumps(indent=2, sort_keys=True).
//   comfyui    UNets: Kohya lora_unet_<module with . → _>.lora_down.weight / .lora_up.weight / .alpha (0-dim);
//              DiTs: the diffusers names (Chroma: prefix diffusion_model.) + <prefix>.<module>.alpha (0-dim);
//              header `lora_adapter_metadata` = the un-prefixed LoraConfig dict.
// Tensors of modules_to_save (the CREPA/U-REPA projector) and DoRA magnitudes keep their diffusers names in both.
#pragma once
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/adapters/lora_model.h"
#include "core/adapters/lora_targets.h"
#include "core/io/safetensors.h"

namespace repa::adapters {

enum class LoraFormat { Diffusers, ComfyUI };
LoraFormat parse_lora_format(const std::string& value);  // InputError naming lora_format
std::string to_string(LoraFormat format);

// The file name diffusers' save_lora_weights writes (and SimpleTuner in both formats).
inline constexpr const char* kLoraFileName = "pytorch_lora_weights.safetensors";

// peft v0.20.0's LoraConfig.to_dict() for these settings, as SimpleTuner builds the config: 40 keys; lora_alpha
// is an integer when it defaults to the rank and a float when given; target_modules a sorted list (peft keeps a
// set) or the regex string.
nlohmann::json peft_lora_config(const LoraSettings& settings, const TargetSpec& targets);

struct LoraFileContent {
  io::NamedTensors tensors;
  std::map<std::string, std::string> metadata;  // the safetensors header entries
};

// `extra` are modules_to_save tensors under their module names without the component prefix
// ("crepa_projector.0.weight"); `extra_metadata` adds header entries (modelspec.*, global_step).
LoraFileContent lora_file_content(const LoraModel& lora, const FamilyLora& family, LoraFormat format,
                                  const io::NamedTensors& extra = {},
                                  const std::map<std::string, std::string>& extra_metadata = {});
void save_lora_file(const std::string& path, const LoraFileContent& content);

// One module's tensors read from a file; alpha when the file says it (a .alpha tensor, or the header's
// lora_alpha / alpha_pattern).
struct ModuleLora {
  torch::Tensor lora_A, lora_B, magnitude;
  std::optional<double> alpha;
};

struct LoraFile {
  LoraFormat format = LoraFormat::Diffusers;
  std::map<std::string, ModuleLora> modules;  // by module path of the model
  io::NamedTensors extra;                     // modules_to_save tensors, component prefix removed
  int64_t rank = 0;                           // rows of A (the largest, should ranks differ)
  bool use_dora = false;
};

// Reads a LoRA file of either format for `model` (Kohya names are matched against the model's module paths).
// InputError naming the file and the tensor for names it cannot place or inconsistent shapes.
LoraFile read_lora_file(const std::string& path, const FamilyLora& family, torch::nn::Module& model);
// The same for a model known only by its module paths (e.g. a checkpoint's "<path>.weight" names).
LoraFile read_lora_file(const std::string& path, const FamilyLora& family, const std::vector<std::string>& modules);

// Copies a file's tensors into an attached LoRA (init_lora). Every adapted module must be in the file and every
// LoRA in the file must be adapted; alpha comes from the file when it carries one (else the settings' alpha).
void load_lora(LoraModel& lora, const LoraFile& file, const std::string& origin);

// The targets that re-create exactly the modules a file adapts (for merge).
TargetSpec targets_of(const LoraFile& file);

}  // namespace repa::adapters
