// A Stable Diffusion single-file checkpoint (.safetensors in the original LDM/SGM names) as
// pretrained_model_name_or_path, without LibTorch: which family the file is (from its header's tensor names and
// shapes), whether the tokenizers it lacks are at hand, and the diffusers folder in the model cache that the worker
// converts it into once (models/ldm_single_file.h installs the converter; the window only checks).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace repa::config {

// The tensor names, shapes and metadata of a .safetensors header (the data is not read). InputError naming the file
// for a missing file, a bad header length or header JSON.
struct SafetensorsHeader {
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::string> metadata;
};
SafetensorsHeader read_safetensors_header(const std::string& path);

// The SD family an LDM/SGM file holds, with the evidence in words ("it has conditioner.embedders.1"): sdxl, sd2x,
// sd1x, or "" with what it is instead (a diffusers UNet, an SD3 or Flux transformer, ...).
struct SdFileFamily {
  std::string family;
  std::string evidence;
};
SdFileFamily sd_single_file_family(const SafetensorsHeader& header);

// The tokenizer folders (vocab.json + merges.txt) a converted `family` pipeline copies: `tokenizer/` (and
// `tokenizer_2/` for SDXL) beside the file, else the fetched example repository's. Missing ones are "" and named
// by sd_single_file_problem.
std::map<std::string, std::string> sd_single_file_tokenizers(const std::string& file, const std::string& family);

// Why `file` cannot train `family` ("" when it can): not an LDM/SGM file, another family ("this checkpoint is SDXL:
// it has conditioner.embedders.1; model_family is sd1x"), or tokenizer files missing (named, with where to put them
// and the fetch command). `value` is the setting as written.
std::string sd_single_file_problem(const std::string& file, const std::string& value, const std::string& family);

// The diffusers folder the file converts into: model_cache_root()/.single-file/<stem>-<hash of path, size, time>.
std::string sd_single_file_folder(const std::string& file);

// Writes the diffusers pipeline of `file` (model_index.json, unet/, vae/, text_encoder*/, tokenizer*/, scheduler/)
// into `folder`; installed by the worker (it needs LibTorch).
using SdSingleFileConverter = void (*)(const std::string& file, const std::string& family, const std::string& folder);
void set_sd_single_file_converter(SdSingleFileConverter converter);

// The converted folder of `file`, converting it first when the cache does not hold it complete. InputError naming
// the file when no converter is installed (a program without the worker's models).
std::string ensure_sd_single_file_pipeline(const std::string& file, const std::string& family);

}  // namespace repa::config
