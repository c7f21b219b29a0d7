// Where a model comes from, without LibTorch (the window checks it before Start, the worker when it loads): a
// local file or folder, or a Hugging Face Hub repository id that `repa-train fetch` put in the studio's model
// cache; and the diffusers component folders each model family's pipeline holds.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::config {

// owner/name with the Hub's characters (letters, digits, '-', '_', '.'), neither part starting with '.'.
bool is_hub_repo_id(const std::string& text);

// The folders (and top-level files) of a model family's diffusers repository, e.g. sdxl → unet, vae, text_encoder,
// text_encoder_2, tokenizer, tokenizer_2, scheduler, model_index.json. InputError naming the family and the
// known ones for anything else. "" gives every known component folder.
std::vector<std::string> family_components(const std::string& family);
std::vector<std::string> hub_families();

// The record a finished fetch leaves in the model folder (repo, revision, commit, files with size and sha256); a
// repo id resolves to the folder only when it is there.
inline constexpr const char* kHubFetchRecord = ".repa-fetch.json";

// $XDG_CACHE_HOME/repa-studio/models (default ~/.cache/repa-studio/models).
std::string model_cache_root();
// model_cache_root()/owner/name: a plain diffusers folder.
std::string hub_model_folder(const std::string& repo);

// What pretrained_model_name_or_path (or another model key) means: an existing file or folder as it is; a repo id
// whose fetched folder is present, that folder; a repo id not fetched, InputError naming `key` and the exact
// `repa-train fetch` command; anything else is returned unchanged for the caller's own message.
std::string resolve_model_source(const std::string& value, const std::string& key = "pretrained_model_name_or_path",
                                 const std::string& family = "");

// A diffusers model's config.json (unet/, transformer/, vae/, ...), read with the bounded parser. InputError naming
// the file when it cannot be read, is not valid JSON or is not an object.
nlohmann::json read_model_config_file(const std::string& path);
// <folder>/config.json; a folder without one is named with `what` it should be, e.g. "a diffusers unet/ folder".
nlohmann::json read_model_folder_config(const std::string& folder, const std::string& what);

}  // namespace repa::config
