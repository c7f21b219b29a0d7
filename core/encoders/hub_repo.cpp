#include "core/encoders/hub_repo.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/encoders/hub_access.h"
#include "core/encoders/weight_download.h"

namespace repa::encoders {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string first_line_of(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}


// Weights and the files that describe a component; pickles, ONNX and Flax files are left on the Hub.
bool wanted_extension(const std::string& path) {
  for (const char* ext : {".safetensors", ".json", ".txt", ".model"})
    if (ends_with(path, ext)) return true;
  return false;
}

bool is_weights_file(const std::string& path) {
  const auto name = fs::path(path).filename().string();
  return ends_with(name, ".safetensors") || name.find(".safetensors.index.") != std::string::npos;
}

std::string folder_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// A path from the Hub's answer becomes a path under the cache folder: nothing absolute, no "..", no empty parts.
void check_repo_path(const std::string& path, const std::string& repo) {
  bool bad = path.empty() || path.front() == '/' || path.find('\\') != std::string::npos ||
             path.find('\0') != std::string::npos;
  std::size_t start = 0;
  while (!bad && start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    const auto part = path.substr(start, end - start);
    bad = part.empty() || part == "." || part == "..";
    start = end + 1;
  }
  if (bad) throw InputError("the Hub's file list of " + repo + " holds an unsafe path '" + path + "'; refused");
}

}  // namespace

std::string hub_endpoint() {
  std::string endpoint = env("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

std::string hub_token(std::string* source) {
  auto found = [&](const std::string& token, const std::string& where) {
    if (source) *source = token.empty() ? "" : where;
    return token;
  };
  if (const auto token = env("HF_TOKEN"); !token.empty()) return found(token, "$HF_TOKEN");
  fs::path file;
  if (const auto path = env("HF_TOKEN_PATH"); !path.empty()) {
    file = path;
  } else if (const auto home = env("HF_HOME"); !home.empty()) {
    file = fs::path(home) / "token";
  } else if (const auto xdg = env("XDG_CACHE_HOME"); !xdg.empty()) {
    file = fs::path(xdg) / "huggingface" / "token";
  } else if (const auto user = env("HOME"); !user.empty()) {
    file = fs::path(user) / ".cache" / "huggingface" / "token";
  }
  if (file.empty()) return found("", "");
  return found(first_line_of(file), file.string());
}


std::string url_encode(const std::string& text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

HubRepoListing list_hub_repo(const std::string& endpoint, const std::string& repo, const std::string& revision,
                             const std::string& token, const std::string& token_source) {
  if (!is_hub_repo_id(repo)) throw InputError("'" + repo + "' is not a Hub repository id (owner/name)");
  const std::string url = endpoint + "/api/models/" + repo + "/revision/" + url_encode(revision, false) + "?blobs=true";
  std::vector<std::string> headers;
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  const auto response = http_get(url, headers, std::size_t{64} << 20);
  if (response.status >= 400) {
    const auto code = response.headers.find("x-error-code");
    throw_hub_access_error(HubAccess{endpoint, repo, revision, !token.empty(), token_source}, response.status,
                           code == response.headers.end() ? "" : code->second, url);
  }
  const auto json = parse_json_bounded(response.body, "the Hub's answer for " + repo + " (" + url + ")");
  if (!json.is_object() || !json.contains("siblings") || !json.at("siblings").is_array())
    throw InputError("the Hub's answer for " + repo + " (" + url +
                     ") has no \"siblings\" file list: " + json_excerpt(json));
  HubRepoListing listing;
  listing.repo = repo;
  listing.revision = revision;
  if (json.contains("sha") && json.at("sha").is_string()) listing.commit = json.at("sha").get<std::string>();
  for (const auto& sibling : json.at("siblings")) {
    if (!sibling.is_object() || !sibling.contains("rfilename") || !sibling.at("rfilename").is_string())
      throw InputError("the Hub's file list of " + repo + " has an entry without rfilename: " + json_excerpt(sibling));
    HubFile file;
    file.path = sibling.at("rfilename").get<std::string>();
    check_repo_path(file.path, repo);
    if (sibling.contains("size") && sibling.at("size").is_number_unsigned())
      file.size = sibling.at("size").get<uint64_t>();
    if (sibling.contains("lfs") && sibling.at("lfs").is_object()) {
      const auto& lfs = sibling.at("lfs");
      if (lfs.contains("sha256") && lfs.at("sha256").is_string()) file.sha256 = lfs.at("sha256").get<std::string>();
      if (lfs.contains("size") && lfs.at("size").is_number_unsigned()) file.size = lfs.at("size").get<uint64_t>();
    }
    listing.files.push_back(std::move(file));
  }
  return listing;
}

std::string hub_file_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                         const std::string& path) {
  return endpoint + "/" + repo + "/resolve/" + url_encode(revision, false) + "/" + url_encode(path, true);
}


std::string weights_variant(const std::string& path) {
  const auto name = fs::path(path).filename().string();
  auto is_variant = [](const std::string& v) {
    if (v.empty() || !std::islower(static_cast<unsigned char>(v[0]))) return false;
    return std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
  };
  const auto index = name.find(".safetensors.index.");
  if (index != std::string::npos) {
    const auto rest = name.substr(index + 19);  // "json" or "fp16.json"
    return ends_with(rest, ".json") && is_variant(rest.substr(0, rest.size() - 5)) ? rest.substr(0, rest.size() - 5)
                                                                                   : "";
  }
  if (!ends_with(name, ".safetensors")) return "";
  const auto stem = name.substr(0, name.size() - 12);
  const auto dot = stem.rfind('.');
  if (dot == std::string::npos) return "";
  auto variant = stem.substr(dot + 1);
  const auto shard = variant.find("-0");  // fp16-00001-of-00002
  if (shard != std::string::npos) variant = variant.substr(0, shard);
  return is_variant(variant) ? variant : "";
}

std::vector<HubFile> select_hub_files(const HubRepoListing& listing, const HubSelection& selection) {
  std::vector<HubFile> chosen;
  if (!selection.includes.empty()) {
    for (const auto& file : listing.files) {
      for (const auto& pattern : selection.includes) {
        const bool folder = !pattern.empty() && pattern.back() == '/';
        if ((folder && file.path.rfind(pattern, 0) == 0) || fnmatch(pattern.c_str(), file.path.c_str(), 0) == 0) {
          chosen.push_back(file);
          break;
        }
      }
    }
  } else {
    const auto components = family_components(selection.family);
    const std::set<std::string> wanted(components.begin(), components.end());
    std::set<std::string> present;
    for (const auto& file : listing.files) {
      const auto top = file.path.substr(0, file.path.find('/'));
      if (file.path == "model_index.json") {
        chosen.push_back(file);
      } else if (top != file.path && wanted.count(top) && wanted_extension(file.path)) {
        chosen.push_back(file);
        present.insert(top);
      }
    }
    if (!selection.family.empty()) {
      std::string missing;
      for (const auto& c : components)
        if ((c == "unet" || c == "transformer") && !present.count(c)) missing += " " + c + "/";
      if (!missing.empty())
        throw InputError(listing.repo + " (revision " + listing.revision + ") has no" + missing + " with " +
                         "safetensors files, which model family " + selection.family +
                         " needs; is it a diffusers repository of that family? (--include names files directly)");
    }
  }
  // One weights variant per folder: the asked one, else the plain weights, else fp16, else the first.
  std::map<std::string, std::set<std::string>> variants;
  for (const auto& file : chosen)
    if (is_weights_file(file.path)) variants[folder_of(file.path)].insert(weights_variant(file.path));
  std::map<std::string, std::string> keep;
  for (const auto& item : variants) {
    const auto& v = item.second;
    keep[item.first] = v.count(selection.variant) ? selection.variant
                       : v.count("")              ? ""
                       : v.count("fp16")          ? "fp16"
                                                  : *v.begin();
  }
  std::vector<HubFile> result;
  for (auto& file : chosen) {
    if (is_weights_file(file.path) && weights_variant(file.path) != keep[folder_of(file.path)]) continue;
    result.push_back(std::move(file));
  }
  if (result.empty()) {
    std::string some;
    for (std::size_t i = 0; i < listing.files.size() && i < 8; ++i) some += "\n  " + listing.files[i].path;
    throw InputError("nothing to fetch from " + listing.repo + " (revision " + listing.revision + ") for " +
                     (selection.includes.empty() ? "model family '" + selection.family + "'" : "the --include globs") +
                     "; the repository holds " + std::to_string(listing.files.size()) + " files, e.g.:" + some);
  }
  return result;
}



}  // namespace repa::encoders
