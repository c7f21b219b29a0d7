#include "core/train/fine_tuned_pipeline.h"

#include <filesystem>
#include <system_error>
#include <vector>

#include "core/base/error.h"
#include "core/config/model_source.h"
#include "core/models/sd_pipeline_folder.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {

// The components a diffusers pipeline loads: model_index.json's entries that name a library and a class
// (["diffusers", "AutoencoderKL"]; optional ones are [null, null]). A folder without model_index.json: its
// visible sub-folders.
std::vector<std::string> component_names(const fs::path& base) {
  std::vector<std::string> out;
  const auto index_path = base / "model_index.json";
  if (fs::is_regular_file(index_path)) {
    const auto index = config::read_model_config_file(index_path.string());
    for (const auto& [key, value] : index.items())
      if (key.rfind('_', 0) != 0 && value.is_array() && value.size() == 2 && value[0].is_string() &&
          value[1].is_string())
        out.push_back(key);
    return out;
  }
  for (const auto& entry : fs::directory_iterator(base))
    if (entry.is_directory() && entry.path().filename().string().rfind('.', 0) != 0)
      out.push_back(entry.path().filename().string());
  return out;
}

// Every file under `source` at the same place under `target`: a hard link to the file itself (a symlinked file,
// as in the Hub cache, is followed), or a copy where no link can be made (another file system). Hidden entries
// (download records, caches) stay behind.
void link_tree(const fs::path& source, const fs::path& target, FineTunedPipeline& out) {
  const auto root = fs::canonical(source);
  fs::create_directories(target);
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->path().filename().string().rfind('.', 0) == 0) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    const auto destination = target / it->path().lexically_relative(root);
    if (it->is_directory()) {
      fs::create_directories(destination);
      continue;
    }
    if (!it->is_regular_file()) continue;
    const auto file = fs::canonical(it->path());
    std::error_code linked;
    fs::create_hard_link(file, destination, linked);
    if (!linked) {
      ++out.linked_files;
      continue;
    }
    std::error_code copied;
    fs::copy_file(file, destination, fs::copy_options::overwrite_existing, copied);
    if (copied)
      throw Error("cannot copy '" + file.string() + "' to '" + destination.string() + "': " + copied.message());
    ++out.copied_files;
  }
}

}  // namespace

FineTunedPipeline write_fine_tuned_pipeline(const config::FamilyPipeline& base, const io::NamedTensors& denoiser,
                                            const std::string& folder, const std::string& single_file) {
  FineTunedPipeline out;
  out.folder = folder;
  const fs::path final_folder(folder);
  const fs::path partial(folder + ".partial");
  const fs::path base_folder(base.folder);
  const std::string denoiser_name = fs::path(base.denoiser_folder).filename().string();
  fs::remove_all(partial);  // what a killed writer left
  fs::create_directories(partial);

  if (fs::is_regular_file(base_folder / "model_index.json"))
    fs::copy_file(base_folder / "model_index.json", partial / "model_index.json");
  for (const auto& component : component_names(base_folder)) {
    if (component == denoiser_name) continue;
    const fs::path source = component == "vae" ? fs::path(base.vae_folder) : base_folder / component;
    if (fs::is_directory(source)) link_tree(source, partial / component, out);
  }

  const fs::path denoiser_config = fs::path(base.denoiser_folder) / "config.json";
  if (!fs::is_regular_file(denoiser_config)) throw Error("'" + denoiser_config.string() + "' is missing");
  fs::create_directories(partial / denoiser_name);
  fs::copy_file(denoiser_config, partial / denoiser_name / "config.json");
  io::save_safetensors((partial / denoiser_name / "diffusion_pytorch_model.safetensors").string(), denoiser,
                       {{"format", "pt"}});

  // The previous pipeline goes only once the new one is complete; links keep any file both share.
  std::error_code ignored;
  fs::remove_all(final_folder, ignored);
  fs::rename(partial, final_folder);
  out.denoiser_folder = (final_folder / denoiser_name).string();
  if (base.family == "sd1x" || base.family == "sd2x" || base.family == "sdxl") {
    models::TensorMap unet(denoiser.begin(), denoiser.end());
    models::write_sd_unet_single_file(out.denoiser_folder, base.family, unet, single_file);
    out.single_file = single_file;
  }
  return out;
}

}  // namespace repa::train
