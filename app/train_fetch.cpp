// repa-train fetch NAME: downloads an encoder's Hugging Face model.safetensors into the studio's cache, with a
// progress bar, resume of a partial download, size and sha256 checks and an atomic rename.
// repa-train fetch OWNER/NAME: downloads a model repository's diffusers folders (hub_fetch.h) the same way.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/config/loader.h"
#include "core/encoders/dinov2_weights.h"
#include "core/encoders/encoder_catalog.h"
#include "core/encoders/hub_fetch.h"
#include "core/encoders/weight_download.h"
#include "core/encoders/weight_location.h"

namespace repa::app {
namespace {

void print_usage() {
  std::printf(
      "Usage: repa-train fetch NAME [--url URL] [--dest FILE] [--force]\n"
      "       repa-train fetch OWNER/REPO [--family F] [--include GLOB]... [--revision REV] [--variant V]\n"
      "                                   [--dest DIR] [--force]\n"
      "       repa-train fetch --config RUN.json [--include GLOB]... [--revision REV] [--variant V] [--force]\n"
      "       repa-train fetch --list\n\n"
      "Downloads the Hugging Face model.safetensors of encoder NAME (a name or SimpleTuner alias:\n"
      "dinov2_vitg14, dinov2_s, dinov2_vitb14_reg, ...) to $XDG_CACHE_HOME/repa-studio/encoders/NAME/\n"
      "(default ~/.cache/...). An interrupted download resumes when run again.\n\n"
      "  --url URL    download from URL instead (a mirror); $HF_ENDPOINT replaces https://huggingface.co\n"
      "  --dest FILE  write FILE instead of the cache\n"
      "  --force      download again even if the file is present\n"
      "  --list       the known encoders, their files and whether they are cached\n\n"
      "OWNER/REPO (a Hub model repository, e.g. stabilityai/stable-diffusion-xl-base-1.0) is listed through the Hub\n"
      "API and its diffusers folders are downloaded to $XDG_CACHE_HOME/repa-studio/models/OWNER/REPO/, a plain\n"
      "diffusers folder that pretrained_model_name_or_path may name (or name the repo id itself once fetched).\n"
      "Only .safetensors, .json and tokenizer files are taken, the plain weights before a variant.\n"
      "  --family F     the folders model family F needs (sdxl: unet vae text_encoder text_encoder_2 tokenizer\n"
      "                 tokenizer_2 scheduler, ...); without it every diffusers component folder of the repo\n"
      "  --include GLOB files whose repo path matches GLOB ('text_encoder/*'), instead of the family's; repeatable\n"
      "  --revision REV branch, tag or commit (default main)\n"
      "  --variant V    prefer the V weights (fp16) where a folder has several\n"
      "  --dest DIR     write into DIR instead of the cache\n"
      "  --config FILE  the repository a run config's pretrained_model_name_or_path names, for its model_family\n"
      "Gated models: the token comes from $HF_TOKEN or the Hub's token file ($HF_HOME/token,\n"
      "~/.cache/huggingface/token); accept the model's licence on its Hub page first. $HF_ENDPOINT names a mirror.\n");
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 4) bytes /= 1000.0, ++u;
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

// A one-line bar redrawn in place on a terminal; on a pipe, a line every 10%.
class ProgressBar {
 public:
  ProgressBar() : tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

  void update(const encoders::DownloadProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (first_) first_ = false, first_bytes_ = p.received;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(p.received - first_bytes_) / seconds : 0.0;
    if (tty_) {
      if (now - last_draw_ < std::chrono::milliseconds(100) && p.received != p.total) return;
      last_draw_ = now;
      std::string line;
      if (p.total > 0) {
        const double fraction = static_cast<double>(p.received) / static_cast<double>(p.total);
        const int filled = static_cast<int>(fraction * 30);
        line = "[" + std::string(filled, '#') + std::string(30 - filled, '.') + "] ";
        char pct[16];
        std::snprintf(pct, sizeof pct, "%5.1f%% ", 100.0 * fraction);
        line += pct + human_bytes(static_cast<double>(p.received)) + " / " + human_bytes(static_cast<double>(p.total));
      } else {
        line = human_bytes(static_cast<double>(p.received));
      }
      line += "  " + human_bytes(rate) + "/s";
      std::fprintf(stderr, "\r%-78s", line.c_str());
      drawn_ = true;
    } else if (p.total > 0) {
      const int decile = static_cast<int>(10 * p.received / p.total);
      if (decile <= last_decile_) return;
      last_decile_ = decile;
      std::fprintf(stderr, "%3d%%  %s / %s\n", decile * 10, human_bytes(static_cast<double>(p.received)).c_str(),
                   human_bytes(static_cast<double>(p.total)).c_str());
    }
  }

  void finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  bool tty_;
  bool first_ = true;
  bool drawn_ = false;
  uint64_t first_bytes_ = 0;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_{};
};

int list_encoders() {
  for (const auto& e : encoders::known_encoders()) {
    const auto path = encoders::cached_weights_path(e);
    std::printf("%-18s %-38s %s\n", e.name.c_str(), e.hf_repo.c_str(),
                std::filesystem::is_regular_file(path) ? ("cached: " + path).c_str() : "not cached");
  }
  return 0;
}

// The downloaded file must be the architecture the name promises; a wrong file is removed rather than cached.
void check_architecture(const encoders::EncoderSpec& spec, const std::string& path) {
  encoders::Dinov2LoadOptions options;
  options.expected = encoders::Dinov2Config::for_size(spec.size, spec.registers);
  try {
    encoders::load_dinov2_file(path, options);
  } catch (const InputError& e) {
    std::filesystem::remove(path);
    throw Error(std::string("the downloaded file is not ") + spec.name + " and was removed: " + e.what());
  }
}

struct RepoFetchArgs {
  std::string repo, dest, revision = "main";
  encoders::HubSelection selection;
  bool force = false;
};

int fetch_model_repo(const RepoFetchArgs& a) {
  encoders::HubFetchRequest request;
  request.repo = a.repo;
  request.revision = a.revision;
  request.selection = a.selection;
  request.destination = a.dest;
  request.force = a.force;
  request.token = encoders::hub_token(&request.token_source);
  const auto folder = a.dest.empty() ? encoders::hub_model_folder(a.repo) : a.dest;
  std::printf("fetching %s (revision %s) from %s\n  to %s\n  token: %s\n", a.repo.c_str(), a.revision.c_str(),
              encoders::hub_endpoint().c_str(), folder.c_str(),
              request.token.empty() ? "none" : request.token_source.c_str());
  std::fflush(stdout);
  std::unique_ptr<ProgressBar> bar;  // one per file
  request.on_file = [&](std::size_t index, std::size_t count, const encoders::HubFile& file, bool skipped) {
    if (bar) bar->finish();
    std::printf("[%zu/%zu] %s  %s%s\n", index + 1, count, file.path.c_str(),
                file.size ? human_bytes(static_cast<double>(file.size)).c_str() : "",
                skipped ? "  (already complete)" : "");
    std::fflush(stdout);
    bar = std::make_unique<ProgressBar>();
  };
  request.on_progress = [&](const encoders::DownloadProgress& p) {
    if (bar) bar->update(p);
  };
  request.on_notice = [&](const std::string& text) {
    if (bar) bar->finish();
    std::fprintf(stderr, "note: %s\n", text.c_str());
  };
  encoders::HubFetchResult result;
  try {
    result = encoders::fetch_hub_model(request);
  } catch (...) {
    if (bar) bar->finish();
    throw;
  }
  if (bar) bar->finish();
  std::printf("saved %zu files of %s at commit %s into %s (%zu downloaded, %s; %zu already complete)\n",
              result.files.size(), a.repo.c_str(), result.commit.empty() ? "?" : result.commit.c_str(),
              result.folder.c_str(), result.downloaded,
              human_bytes(static_cast<double>(result.downloaded_bytes)).c_str(), result.skipped);
  return 0;
}

}  // namespace

int fetch_command(const Args& args) {
  std::string name, url, dest;
  bool force = false;
  RepoFetchArgs repo;
  bool repo_options = false;  // an option that only a model repository takes
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--help" || a == "-h") {
      print_usage();
      return 0;
    } else if (a == "--list") {
      return list_encoders();
    } else if (a == "--force") {
      force = true;
    } else if ((a == "--url" || a == "--dest") && i + 1 < args.size()) {
      (a == "--url" ? url : dest) = args[++i];
    } else if (a == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (a == "--include" && i + 1 < args.size()) {
      repo.selection.includes.push_back(args[++i]);
      repo_options = true;
    } else if ((a == "--revision" || a == "--family" || a == "--variant") && i + 1 < args.size()) {
      (a == "--revision" ? repo.revision
       : a == "--family" ? repo.selection.family
                         : repo.selection.variant) = args[++i];
      repo_options = true;
    } else if (!a.empty() && a[0] != '-' && name.empty()) {
      name = a;
    } else {
      std::fprintf(stderr, "repa-train fetch: unexpected argument '%s'\n", a.c_str());
      print_usage();
      return 2;
    }
  }
  if (!config_path.empty()) {
    if (!name.empty()) throw InputError("fetch takes a NAME or --config, not both");
    // SimpleTuner's keys, with or without the leading "--".
    const auto config = config::read_config_file(config_path);
    auto text = [&](const std::string& key) {
      for (const auto& k : {key, "--" + key})
        if (config.contains(k) && config.at(k).is_string()) return config.at(k).get<std::string>();
      return std::string();
    };
    name = text("pretrained_model_name_or_path");
    if (!encoders::is_hub_repo_id(name))
      throw InputError(config_path + ": pretrained_model_name_or_path " +
                       (name.empty() ? "is not set" : "'" + name + "' is not a Hub repository id (owner/name)") +
                       "; nothing to fetch");
    const auto families = encoders::hub_families();
    const auto family = text("model_family");
    if (repo.selection.family.empty() && repo.selection.includes.empty() &&
        std::find(families.begin(), families.end(), family) != families.end())
      repo.selection.family = family;
  }
  if (name.empty()) {
    print_usage();
    return 2;
  }
  if (name.find('/') != std::string::npos) {
    if (!encoders::is_hub_repo_id(name))
      throw InputError("'" + name + "' is not a Hub repository id (owner/name with letters, digits, '-', '_', '.')");
    if (!url.empty()) throw InputError("--url fetches one encoder file; a model repository takes HF_ENDPOINT");
    if (repo.revision.empty()) throw InputError("--revision needs a branch, tag or commit");
    if (!repo.selection.family.empty()) encoders::family_components(repo.selection.family);  // names a bad family
    repo.repo = name;
    repo.dest = dest;
    repo.force = force;
    return fetch_model_repo(repo);
  }
  if (repo_options)
    throw InputError(
        "--family, --include, --revision and --variant apply to a model repository (OWNER/NAME), not "
        "to encoder '" +
        name + "'");
  const auto& spec = encoders::find_encoder(name);
  if (dest.empty()) dest = encoders::cached_weights_path(spec);
  if (url.empty()) {
    url = spec.url;
    if (const char* endpoint = std::getenv("HF_ENDPOINT"); endpoint && *endpoint) {
      const std::string hub = "https://huggingface.co";
      std::string base = endpoint;
      while (!base.empty() && base.back() == '/') base.pop_back();
      url = base + url.substr(hub.size());
    }
  }
  if (!force && std::filesystem::is_regular_file(dest)) {
    std::printf("%s is already downloaded: %s (use --force to fetch it again)\n", spec.name.c_str(), dest.c_str());
    return 0;
  }
  if (force) std::filesystem::remove(encoders::partial_path(dest));

  std::printf("fetching %s (%s)\n  from %s\n  to   %s\n", spec.name.c_str(), spec.hf_repo.c_str(), url.c_str(),
              dest.c_str());
  std::fflush(stdout);
  ProgressBar bar;
  encoders::DownloadRequest request;
  request.url = url;
  request.destination = dest;
  request.expected_bytes = spec.bytes;
  request.expected_sha256 = spec.sha256;
  request.on_progress = [&](const encoders::DownloadProgress& p) { bar.update(p); };
  request.on_notice = [&](const std::string& text) {
    bar.finish();
    std::fprintf(stderr, "note: %s\n", text.c_str());
  };
  encoders::DownloadResult result;
  try {
    result = encoders::download_file(request);
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  check_architecture(spec, dest);
  std::printf("saved %s (%s, sha256 %s%s)\n", dest.c_str(), human_bytes(static_cast<double>(result.bytes)).c_str(),
              result.sha256.c_str(), result.digest_checked ? ", verified" : ", not verified: digest unknown");
  return 0;
}

}  // namespace repa::app
