#include "core/encoders/hub_fetch.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/encoders/hub_access.h"
#include "core/encoders/sha256.h"
#include "core/io/atomic_file.h"

namespace repa::encoders {

namespace fs = std::filesystem;

namespace {

// The previous fetch's record; an unreadable one is ignored (every file is then checked anew).
nlohmann::json read_record(const fs::path& path, const HubFetchRequest& request) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  std::stringstream text;
  text << in.rdbuf();
  std::string why;
  auto json = try_parse_json_bounded(text.str(), &why);
  if (json.is_discarded() || !json.is_object() || !json.contains("files") || !json.at("files").is_object()) {
    if (request.on_notice) request.on_notice(path.string() + " is unreadable (" + why + "); checking every file");
    return nlohmann::json::object();
  }
  return json;
}

bool recorded_same(const nlohmann::json& record, const HubFile& file) {
  if (!record.contains("files") || !record.at("files").contains(file.path)) return false;
  const auto& entry = record.at("files").at(file.path);
  return entry.is_object() && entry.value("size", uint64_t{0}) == file.size &&
         entry.value("sha256", std::string()) == file.sha256;
}

// Whether `path` already holds `file`: the size the Hub gives, and the LFS digest (from the record when it says
// this very file was verified, otherwise hashed now).
bool already_complete(const fs::path& path, const HubFile& file, const nlohmann::json& record) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || (file.size && size != file.size)) return false;
  if (recorded_same(record, file)) return true;
  if (!file.sha256.empty()) return sha256_file(path.string()) == file.sha256;
  return file.size != 0;
}

}  // namespace

HubFetchResult fetch_hub_model(const HubFetchRequest& request) {
  const std::string endpoint = request.endpoint.empty() ? hub_endpoint() : request.endpoint;
  HubFetchResult result;
  result.folder = request.destination.empty() ? hub_model_folder(request.repo) : request.destination;
  const auto listing = list_hub_repo(endpoint, request.repo, request.revision, request.token, request.token_source);
  result.commit = listing.commit;
  result.files = select_hub_files(listing, request.selection);
  for (const auto& f : result.files) result.total_bytes += f.size;

  fs::create_directories(result.folder);
  const auto record_path = fs::path(result.folder) / kHubFetchRecord;
  auto record = request.force ? nlohmann::json::object() : read_record(record_path, request);
  if (!record.contains("files")) record["files"] = nlohmann::json::object();
  record["repo"] = request.repo;
  record["revision"] = request.revision;
  record["commit"] = listing.commit;
  record["endpoint"] = endpoint;
  record["complete"] = false;  // until every selected file is in place
  // Files come from the listed commit, so a branch that moves during the fetch cannot mix two commits.
  const std::string pinned = listing.commit.empty() ? request.revision : listing.commit;
  std::vector<std::string> headers;
  if (!request.token.empty()) headers.push_back("Authorization: Bearer " + request.token);

  for (std::size_t i = 0; i < result.files.size(); ++i) {
    const auto& file = result.files[i];
    const auto path = fs::path(result.folder) / file.path;
    if (request.force) fs::remove(partial_path(path.string()));
    const bool skip = !request.force && already_complete(path, file, record);
    if (request.on_file) request.on_file(i, result.files.size(), file, skip);
    if (skip) {
      ++result.skipped;
    } else {
      DownloadRequest download;
      download.url = hub_file_url(endpoint, request.repo, pinned, file.path);
      download.destination = path.string();
      download.expected_bytes = file.size;
      download.expected_sha256 = file.sha256;
      download.headers = headers;
      download.on_progress = request.on_progress;
      // Small git files carry no digest on the Hub; that is expected, not worth a line each.
      download.on_notice = [&](const std::string& text) {
        if (request.on_notice && text.find("not recorded") == std::string::npos) request.on_notice(text);
      };
      try {
        const auto downloaded = download_file(download);
        result.downloaded_bytes += downloaded.bytes - downloaded.resumed_from;
      } catch (const HttpStatusError& e) {
        throw_hub_access_error(
            HubAccess{endpoint, request.repo, request.revision, !request.token.empty(), request.token_source},
            e.status(), e.error_code(), download.url);
      }
      ++result.downloaded;
    }
    record["files"][file.path] = {{"size", file.size}, {"sha256", file.sha256}};
    io::write_text_atomically(record_path.string(), record.dump(1) + "\n");
  }
  record["complete"] = true;
  io::write_text_atomically(record_path.string(), record.dump(1) + "\n");
  return result;
}

}  // namespace repa::encoders
