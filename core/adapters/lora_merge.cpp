#include "core/adapters/lora_merge.h"

#include <filesystem>
#include <set>

#include "core/adapters/lora_file.h"
#include "core/base/error.h"

namespace repa::adapters {
namespace fs = std::filesystem;

std::string base_weights_path(const std::string& base) {
  if (!fs::is_directory(base)) return base;
  for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                           "model.safetensors", "model.safetensors.index.json"}) {
    if (fs::exists(fs::path(base) / name)) return (fs::path(base) / name).string();
  }
  throw InputError("base '" + base + "' is a folder without diffusion_pytorch_model.safetensors (or its index)");
}

namespace {

std::string component_of(const std::string& lora_path) {
  const auto file = io::SafetensorsFile::open(lora_path);
  for (const auto& name : file.names()) {
    if (name.rfind("lora_unet_", 0) == 0 || name.rfind("unet.", 0) == 0) return "unet";
    if (name.rfind("transformer.", 0) == 0) return "transformer";
    if (name.rfind("diffusion_model.", 0) == 0) return "diffusion_model";
  }
  throw InputError("LoRA file '" + lora_path +
                   "': no tensor names a unet (unet., lora_unet_) or transformer (transformer., diffusion_model.)");
}

}  // namespace

MergeResult merge_lora_file(const std::string& base, const std::string& lora_path) {
  const auto checkpoint = io::SafetensorsCheckpoint::open(base_weights_path(base));
  MergeResult result;
  result.component = component_of(lora_path);
  FamilyLora family;
  family.component = result.component == "diffusion_model" ? "transformer" : result.component;
  family.comfyui = result.component == "unet" ? ComfyNaming::Kohya : ComfyNaming::KeepPrefix;
  std::vector<std::string> modules;
  for (const auto& name : checkpoint.names()) {
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0)
      modules.push_back(name.substr(0, name.size() - 7));
  }
  const auto lora = read_lora_file(lora_path, family, modules);
  const std::set<std::string> known(modules.begin(), modules.end());
  for (const auto& item : lora.modules) {
    if (!known.count(item.first)) {
      throw InputError("LoRA file '" + lora_path + "' adapts '" + item.first + "', but base '" + base +
                       "' has no tensor '" + item.first + ".weight'");
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& name : checkpoint.names()) {
    auto tensor = checkpoint.tensor(name);
    const auto module = name.size() > 7 ? name.substr(0, name.size() - 7) : std::string();
    const auto it = lora.modules.find(module);
    if (it != lora.modules.end() && name.compare(name.size() - 7, 7, ".weight") == 0) {
      const auto& m = it->second;
      const auto w = tensor.to(torch::kFloat32);
      const double rank = static_cast<double>(m.lora_A.size(0));
      const double scaling = (m.alpha ? *m.alpha : rank) / rank;
      auto delta = m.lora_B.flatten(1).to(torch::kFloat32).matmul(m.lora_A.flatten(1).to(torch::kFloat32)) * scaling;
      if (delta.numel() != w.numel()) {
        throw InputError("LoRA file '" + lora_path + "': " + module + " gives a " + c10::str(delta.sizes()) +
                         " update for the base weight " + c10::str(w.sizes()));
      }
      auto merged = w + delta.reshape(w.sizes());
      if (m.magnitude.defined()) {
        auto norm = merged.flatten(1).norm(2, {1});
        auto factor = m.magnitude.to(torch::kFloat32).flatten() / norm;
        std::vector<int64_t> shape(static_cast<std::size_t>(w.dim()), 1);
        shape[0] = -1;
        merged = merged * factor.reshape(shape);
      }
      tensor = merged.to(tensor.scalar_type());
      ++result.merged_modules;
    }
    result.tensors.emplace_back(name, tensor);
  }
  return result;
}

}  // namespace repa::adapters
