// Model repositories on the Hugging Face Hub: listing a revision's files through the Hub API, choosing the files a
// model family needs (diffusers component folders, safetensors over pickles, the non-variant weights), the token
// for gated repositories, and the studio's cache folder that a repo id resolves to.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace repa::encoders {

struct HubFile {
  std::string path;    // rfilename: the file's path inside the repository
  uint64_t size = 0;   // 0: not given
  std::string sha256;  // the LFS object's sha256 (large files); "" for small git files
};

struct HubRepoListing {
  std::string repo;      // owner/name
  std::string revision;  // as asked (branch, tag or commit)
  std::string commit;    // the commit the revision points at ("sha" in the API answer)
  std::vector<HubFile> files;
};

// $HF_ENDPOINT without a trailing slash, or https://huggingface.co.
std::string hub_endpoint();

// $HF_TOKEN, else the first line of $HF_HOME/token, else of ~/.cache/huggingface/token ($XDG_CACHE_HOME is
// honoured as huggingface_hub does); "" when there is none. `source` receives where it came from.
std::string hub_token(std::string* source = nullptr);

// owner/name with the Hub's characters (letters, digits, '-', '_', '.'), neither part starting with '.'.
bool is_hub_repo_id(const std::string& text);

// Percent-encoding for URL paths: `keep_slash` leaves '/' as is (file paths), otherwise it is encoded (revisions
// such as refs/pr/1, which the Hub takes as one path segment).
std::string url_encode(const std::string& text, bool keep_slash);

// {endpoint}/api/models/{repo}/revision/{revision}?blobs=true, parsed. InputError naming the repo for 401 (gated or
// private: which token is used and where to accept the licence), 403 (the token lacks access), 404 (repo or
// revision unknown) and for an answer without a sibling list; Error for a network failure.
// `token_source` says where the token came from, for the messages.
HubRepoListing list_hub_repo(const std::string& endpoint, const std::string& repo, const std::string& revision,
                             const std::string& token, const std::string& token_source = "");

// {endpoint}/{repo}/resolve/{revision}/{path}
std::string hub_file_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                         const std::string& path);

// The folders (and top-level files) of a model family's diffusers repository, e.g. sdxl → unet, vae, text_encoder,
// text_encoder_2, tokenizer, tokenizer_2, scheduler, model_index.json. InputError naming the family and the
// known ones for anything else. "" gives every known component folder.
std::vector<std::string> family_components(const std::string& family);
std::vector<std::string> hub_families();

// The diffusers variant of a weights file name ("fp16" for diffusion_pytorch_model.fp16.safetensors or
// model.safetensors.index.fp16.json), "" for the plain weights and for every other file.
std::string weights_variant(const std::string& path);

struct HubSelection {
  std::string family;                 // components to take; "" with no includes: every known component
  std::vector<std::string> includes;  // shell globs on the repo path ('text_encoder/*'); replace the family's list
  std::string variant;                // preferred variant ("fp16"); "" prefers the plain weights
};

// The files to fetch. With a family (or none): files inside its component folders, plus model_index.json, whose
// names end in .safetensors, .json, .txt or .model (tokenizer vocabularies), one weights variant per folder. With
// includes: every file matching a glob, one weights variant per folder. InputError when the family's weight
// folders are missing from the repository (naming them) or when nothing matches (naming a few repo files).
std::vector<HubFile> select_hub_files(const HubRepoListing& listing, const HubSelection& selection);

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

}  // namespace repa::encoders
