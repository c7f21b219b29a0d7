// repa-train merge --base BASE --lora FILE --out OUT: base weights + a LoRA (diffusers or ComfyUI format) → merged
// weights under the base's own names. OUT ending in .safetensors is one file; otherwise a diffusers component folder
// (diffusion_pytorch_model.safetensors, with the base folder's config.json copied beside it).
#include <cstdio>
#include <filesystem>
#include <string>

#include "app/train_commands.h"
#include "core/adapters/lora_merge.h"
#include "core/base/error.h"
#include "core/io/safetensors.h"

namespace repa::app {

int merge_command(const Args& args) {
  std::string base, lora, out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "Usage: repa-train merge --base BASE --lora LORA.safetensors --out OUT\n\n"
          "Writes W + (alpha / r) B A for every module the LoRA adapts (DoRA: rescaled per row) and copies\n"
          "every other tensor. BASE: a .safetensors file, a sharded index or a diffusers component folder.\n"
          "OUT: a .safetensors file, or a folder that receives diffusion_pytorch_model.safetensors and the\n"
          "base folder's config.json.\n");
      return 0;
    }
    const bool has_value = i + 1 < args.size();
    if (a == "--base" && has_value) {
      base = args[++i];
    } else if (a == "--lora" && has_value) {
      lora = args[++i];
    } else if (a == "--out" && has_value) {
      out = args[++i];
    } else {
      throw InputError("unknown or incomplete option '" + a + "' (see repa-train merge --help)");
    }
  }
  if (base.empty() || lora.empty() || out.empty()) throw InputError("merge needs --base, --lora and --out");
  const auto merged = adapters::merge_lora_file(base, lora);
  namespace fs = std::filesystem;
  std::string path = out;
  if (fs::path(out).extension() != ".safetensors") {
    fs::create_directories(out);
    path = (fs::path(out) / "diffusion_pytorch_model.safetensors").string();
    const auto config = fs::path(base) / "config.json";
    if (fs::is_directory(base) && fs::exists(config))
      fs::copy_file(config, fs::path(out) / "config.json", fs::copy_options::overwrite_existing);
  }
  io::save_safetensors(path, merged.tensors, {{"format", "pt"}});
  std::printf("merged %lld modules of the %s into %s\n", static_cast<long long>(merged.merged_modules),
              merged.component.c_str(), path.c_str());
  return 0;
}

}  // namespace repa::app
