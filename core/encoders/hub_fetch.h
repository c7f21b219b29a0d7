// Fetching a Hub model repository into a plain diffusers folder: the chosen files at their repo paths, each
// downloaded to a .part file (resumed when a run is repeated), checked against the Hub's size and LFS sha256, and
// recorded in the folder's .repa-fetch.json so that a repeated fetch skips what is already complete.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/encoders/hub_repo.h"
#include "core/encoders/weight_download.h"

namespace repa::encoders {

struct HubFetchRequest {
  std::string repo;               // owner/name
  std::string revision = "main";  // branch, tag or commit
  HubSelection selection;         // family / --include / variant
  std::string destination;        // "": hub_model_folder(repo)
  std::string endpoint;           // "": hub_endpoint()
  std::string token;              // "": anonymous
  std::string token_source;       // where the token came from, for messages
  bool force = false;             // download every file again
  // Before each file: its position, the count, the file, and whether it is already complete (skipped).
  std::function<void(std::size_t index, std::size_t count, const HubFile& file, bool skipped)> on_file;
  std::function<void(const DownloadProgress&)> on_progress;
  std::function<void(const std::string&)> on_notice;
};

struct HubFetchResult {
  std::string folder;
  std::string commit;          // the commit the revision pointed at
  std::vector<HubFile> files;  // every selected file (downloaded or already there)
  std::size_t downloaded = 0, skipped = 0;
  uint64_t downloaded_bytes = 0;
  uint64_t total_bytes = 0;  // of the selected files, as the Hub gives them
};

// InputError for a refused or unknown repository, revision or file (hub_access.h) and for bad selections; Error
// for network failures (the .part files stay, so the same command resumes) and for size or digest mismatches.
HubFetchResult fetch_hub_model(const HubFetchRequest& request);

}  // namespace repa::encoders
