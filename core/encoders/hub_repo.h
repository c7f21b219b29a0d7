// Model repositories on the Hugging Face Hub: listing a revision's files through the Hub API, choosing the files a
// model family needs (diffusers component folders, safetensors over pickles, the non-variant weights), the token
// for gated repositories, and the studio's cache folder that a repo id resolves to.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config/model_source.h"

namespace repa::encoders {

// The model-folder rules live with the config (the window checks them too, without LibTorch).
using config::family_components;
using config::hub_families;
using config::hub_model_folder;
using config::is_hub_repo_id;
using config::kHubFetchRecord;
using config::model_cache_root;
using config::resolve_model_source;

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




}  // namespace repa::encoders
