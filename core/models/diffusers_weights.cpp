#include "core/models/diffusers_weights.h"

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/base/error.h"

namespace repa::models::diffusers {
namespace {

std::string shape_text(torch::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

// diffusers < 0.14 saved the attention of the VAE mid block and of AttnDownBlock2D under other names.
std::string modern_attention_name(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> renames = {
      {".query.", ".to_q."}, {".key.", ".to_k."}, {".value.", ".to_v."}, {".proj_attn.", ".to_out.0."}};
  for (const auto& [old_part, new_part] : renames) {
    const auto at = name.find(old_part);
    if (at != std::string::npos && name.find(".attentions.") != std::string::npos) {
      return name.substr(0, at) + new_part + name.substr(at + old_part.size());
    }
  }
  return name;
}

std::string list_names(const std::vector<std::string>& names, std::size_t limit = 20) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += "\n    " + names[i];
  if (names.size() > limit) out += "\n    ... and " + std::to_string(names.size() - limit) + " more";
  return out;
}

}  // namespace

void load_named_tensors(torch::nn::Module& module, const std::vector<std::string>& names, const TensorSource& tensor,
                        const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters(true)) targets[item.key()] = item.value();
  for (const auto& item : module.named_buffers(true)) targets[item.key()] = item.value();

  std::vector<std::string> unexpected, mismatched, missing;
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& name : names) {
    std::string target_name = name;
    if (!targets.count(target_name)) target_name = modern_attention_name(name);
    auto it = targets.find(target_name);
    if (it == targets.end()) {
      unexpected.push_back(name);
      continue;
    }
    auto value = tensor(name);
    auto& target = it->second;
    // Old checkpoints stored the VAE attention projections as 1x1 convs; the values are the same matrix.
    if (value.dim() == 4 && target.dim() == 2 && value.size(2) == 1 && value.size(3) == 1) value = value.flatten(1);
    if (value.sizes() != target.sizes()) {
      mismatched.push_back(name + ": checkpoint " + shape_text(value.sizes()) + ", model " +
                           shape_text(target.sizes()));
      loaded.insert(target_name);  // reported once, as mis-shaped rather than also missing
      continue;
    }
    target.copy_(value.to(target.device(), target.scalar_type()));
    loaded.insert(target_name);
  }
  for (const auto& [name, t] : targets) {
    if (!loaded.count(name)) missing.push_back(name);
  }
  if (unexpected.empty() && mismatched.empty() && missing.empty()) return;

  std::ostringstream message;
  message << "weights in '" << source << "' do not match the model:";
  if (!missing.empty()) message << "\n  missing (" << missing.size() << "):" << list_names(missing);
  if (!unexpected.empty()) message << "\n  unexpected (" << unexpected.size() << "):" << list_names(unexpected);
  if (!mismatched.empty()) message << "\n  wrong shape (" << mismatched.size() << "):" << list_names(mismatched);
  throw InputError(message.str());
}

void load_checkpoint(torch::nn::Module& module, const io::SafetensorsCheckpoint& checkpoint) {
  load_named_tensors(
      module, checkpoint.names(), [&](const std::string& name) { return checkpoint.tensor(name, /*view=*/true); },
      checkpoint.path());
}

std::string find_weights_file(const std::string& folder) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(folder)) throw InputError("model folder '" + folder + "' does not exist");
  const std::vector<std::string> candidates = {
      "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
      "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.safetensors.index.json"};
  for (const auto& name : candidates) {
    const auto path = fs::path(folder) / name;
    if (fs::exists(path)) return path.string();
  }
  std::string hint;
  if (fs::exists(fs::path(folder) / "diffusion_pytorch_model.bin")) {
    hint = " (only a pickled diffusion_pytorch_model.bin is there; convert it to safetensors)";
  }
  throw InputError("model folder '" + folder + "' has no diffusion_pytorch_model.safetensors or sharded index" +
                   hint);
}

}  // namespace repa::models::diffusers
