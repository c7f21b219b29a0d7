// repa-train merge --base BASE --lora FILE --out OUT: base weights + a LoRA (diffusers or ComfyUI format) → merged
// weights under the base's own names. OUT ending in .safetensors is one file; otherwise a diffusers component folder
// (diffusion_pytorch_model.safetensors, with the base folder's config.json copied beside it) and, for families with
// an official single-file table (official_single_file.h: Flux, Chroma, Flux.2, SD3, PixArt; the SD UNets through
// ldm_single_file.h), OUT.safetensors under the official names. Sana and AuraFlow are merged under diffusers names
// only.
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "app/train_commands.h"
#include "core/adapters/lora_merge.h"
#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/models/sd_pipeline_folder.h"
#include "core/models/official_single_file.h"

namespace repa::app {

int merge_command(const Args& args) {
  std::string base, lora, out, single_file;
  bool no_single_file = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "Usage: repa-train merge --base BASE --lora LORA.safetensors --out OUT [--single-file FILE | "
          "--no-single-file]\n\n"
          "Writes W + (alpha / r) B A for every module the LoRA adapts (DoRA: rescaled per row) and copies\n"
          "every other tensor. BASE: a .safetensors file, a sharded index or a diffusers component folder.\n"
          "OUT: a .safetensors file, or a folder that receives diffusion_pytorch_model.safetensors and the\n"
          "base folder's config.json.\n"
          "Flux, Chroma, Flux.2, SD3 and PixArt weights are also written under the official single-file names\n"
          "(as flux1-dev.safetensors is): to FILE with --single-file, else to OUT.safetensors beside an OUT folder.\n"
          "Sana and AuraFlow weights are merged into the diffusers names only.\n"
          "An SD 1.x / 2.x / XL UNet folder as BASE is written the same way in the LDM/SGM names A1111 and\n"
          "ComfyUI load: with the VAE and text encoders of the pipeline that holds it, else the UNet alone.\n");
      return 0;
    }
    const bool has_value = i + 1 < args.size();
    if (a == "--base" && has_value) {
      base = args[++i];
    } else if (a == "--lora" && has_value) {
      lora = args[++i];
    } else if (a == "--out" && has_value) {
      out = args[++i];
    } else if (a == "--single-file" && has_value) {
      single_file = args[++i];
    } else if (a == "--no-single-file") {
      no_single_file = true;
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

  std::vector<std::string> names;
  for (const auto& item : merged.tensors) names.push_back(item.first);
  const auto family = models::official_single_file_family(names);
  // The SD UNets are told apart by the base folder's config.json, not by their names.
  const auto sd_family = family.empty() ? models::sd_unet_folder_family(base) : std::string();
  // Sana and AuraFlow: their official names are read, not written.
  const auto unwritten = family.empty() && sd_family.empty() ? models::unwritten_single_file_family(names) : "";
  if (!single_file.empty() && family.empty() && sd_family.empty())
    throw InputError("--single-file: the merged weights are " +
                     (unwritten.empty() ? std::string("not of a family with an official single-file table")
                                        : unwritten + " weights, which have no official single-file writer") +
                     " (flux, chroma, flux2, sd3, pixart; sd1x, sd2x and sdxl from a diffusers unet/ folder as "
                     "--base); the merged diffusers weights are in " +
                     path);
  if (!unwritten.empty() && !no_single_file && fs::path(out).extension() != ".safetensors")
    std::printf("%s weights have no official single-file writer: the merge is in %s only\n", unwritten.c_str(),
                path.c_str());
  if (no_single_file || (family.empty() && sd_family.empty())) return 0;
  if (single_file.empty()) {
    if (fs::path(out).extension() == ".safetensors") return 0;  // one file asked for: the base's names only
    auto folder = fs::path(out);
    if (folder.filename().empty()) folder = folder.parent_path();  // "merged/" → merged.safetensors
    single_file = folder.string() + ".safetensors";
  }
  const std::map<std::string, torch::Tensor> by_name(merged.tensors.begin(), merged.tensors.end());
  if (!sd_family.empty()) {
    const auto count = models::write_sd_unet_single_file(base, sd_family, by_name, single_file);
    std::printf("wrote the %s LDM single file %s (%zu tensors)\n", sd_family.c_str(), single_file.c_str(), count);
    return 0;
  }
  const auto official = models::diffusers_to_official(family, by_name, path);
  io::save_safetensors(single_file, io::NamedTensors(official.begin(), official.end()), {{"format", "pt"}});
  std::printf("wrote the %s official single file %s (%zu tensors)\n", family.c_str(), single_file.c_str(),
              official.size());
  return 0;
}

}  // namespace repa::app
