// Fetching Hub model repositories against a fake Hub on 127.0.0.1 (never the network): the file choice per family,
// variants and globs, a whole fetch into the cache folder and the repo id resolving to it, resume after a dropped
// connection, skipping complete files, gated repositories and tokens, 404s, a wrong digest and unsafe paths.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/base/error.h"
#include "core/encoders/hub_fetch.h"
#include "core/encoders/hub_repo.h"
#include "tests/encoders/fake_hub_server.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace repa::encoders;
using repa::test::contains;
using repa::test::error_of;
using repa::test::FakeHubServer;
using repa::test::ScratchDir;

namespace {

// Bytes that differ everywhere, so a resume at a wrong offset changes the digest.
std::string payload(std::size_t size, uint32_t seed) {
  std::string bytes(size, '\0');
  for (auto& b : bytes) {
    seed = seed * 1664525u + 1013904223u;
    b = static_cast<char>(seed >> 24);
  }
  return bytes;
}

// An SDXL-shaped diffusers repository: plain and fp16 weights, pickles, ONNX and a safety folder to leave out.
FakeHubServer::Repo sdxl_repo() {
  FakeHubServer::Repo r;
  r.files = {
      {"model_index.json", R"({"_class_name": "StableDiffusionXLPipeline"})"},
      {"README.md", "# card"},
      {"sd_xl_base_1.0.safetensors", payload(300, 1)},
      {"unet/config.json", R"({"_class_name": "UNet2DConditionModel"})"},
      {"unet/diffusion_pytorch_model.safetensors", payload(200000, 2)},
      {"unet/diffusion_pytorch_model.fp16.safetensors", payload(100000, 3)},
      {"unet/diffusion_pytorch_model.bin", payload(500, 4)},
      {"vae/config.json", "{}"},
      {"vae/diffusion_pytorch_model.fp16.safetensors", payload(5000, 5)},
      {"vae_decoder/model.onnx", payload(100, 6)},
      {"text_encoder/config.json", "{}"},
      {"text_encoder/model.safetensors", payload(7000, 7)},
      {"text_encoder/model.fp16.safetensors", payload(3500, 8)},
      {"text_encoder_2/config.json", "{}"},
      {"text_encoder_2/model.safetensors.index.json", R"({"weight_map": {}})"},
      {"text_encoder_2/model-00001-of-00002.safetensors", payload(4000, 9)},
      {"text_encoder_2/model-00002-of-00002.safetensors", payload(4000, 10)},
      {"text_encoder_2/model.safetensors.index.fp16.json", R"({"weight_map": {}})"},
      {"text_encoder_2/model.fp16-00001-of-00001.safetensors", payload(4000, 11)},
      {"tokenizer/vocab.json", R"({"a": 0})"},
      {"tokenizer/merges.txt", "#version: 0.2\n"},
      {"tokenizer_2/vocab.json", R"({"b": 0})"},
      {"tokenizer_2/merges.txt", "#version: 0.2\n"},
      {"tokenizer_2/special_tokens_map.json", "{}"},
      {"scheduler/scheduler_config.json", "{}"},
      {"safety_checker/model.safetensors", payload(100, 12)},
  };
  return r;
}

std::vector<std::string> paths_of(const std::vector<HubFile>& files) {
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(f.path);
  return paths;
}

HubRepoListing listing_of(const FakeHubServer::Repo& repo) {
  HubRepoListing l;
  l.repo = "stabilityai/sdxl";
  l.revision = "main";
  for (const auto& f : repo.files) l.files.push_back({f.first, f.second.size(), ""});
  return l;
}

// The environment a fetch reads, set for one test and restored after it.
class HubEnvironment {
 public:
  explicit HubEnvironment(const ScratchDir& dir) {
    for (const char* name : {"XDG_CACHE_HOME", "HF_TOKEN", "HF_HOME", "HF_TOKEN_PATH", "HF_ENDPOINT"}) {
      const char* value = std::getenv(name);
      saved_.push_back({name, value ? value : "", value != nullptr});
      ::unsetenv(name);
    }
    ::setenv("XDG_CACHE_HOME", dir.file("cache").c_str(), 1);
  }
  ~HubEnvironment() {
    for (const auto& s : saved_) {
      if (s.set)
        ::setenv(s.name.c_str(), s.value.c_str(), 1);
      else
        ::unsetenv(s.name.c_str());
    }
  }

 private:
  struct Saved {
    std::string name, value;
    bool set;
  };
  std::vector<Saved> saved_;
};

HubFetchRequest request_for(const FakeHubServer& hub, const std::string& repo, const std::string& family) {
  HubFetchRequest r;
  r.repo = repo;
  r.endpoint = hub.endpoint();
  r.selection.family = family;
  return r;
}

}  // namespace

TEST_CASE("weights variants, repo ids and URL paths") {
  CHECK(weights_variant("unet/diffusion_pytorch_model.safetensors") == "");
  CHECK(weights_variant("unet/diffusion_pytorch_model.fp16.safetensors") == "fp16");
  CHECK(weights_variant("t/model.fp16-00001-of-00002.safetensors") == "fp16");
  CHECK(weights_variant("t/model-00001-of-00002.safetensors") == "");
  CHECK(weights_variant("t/model.safetensors.index.json") == "");
  CHECK(weights_variant("t/model.safetensors.index.bf16.json") == "bf16");
  CHECK(weights_variant("sd_xl_base_1.0.safetensors") == "");  // a version number is no variant
  CHECK(weights_variant("t/config.json") == "");
  CHECK(is_hub_repo_id("stabilityai/stable-diffusion-xl-base-1.0"));
  CHECK(is_hub_repo_id("black-forest-labs/FLUX.1-dev"));
  CHECK_FALSE(is_hub_repo_id("dinov2_vitg14"));
  CHECK_FALSE(is_hub_repo_id("/abs/path"));
  CHECK_FALSE(is_hub_repo_id("a/b/c"));
  CHECK_FALSE(is_hub_repo_id("../x"));
  CHECK(url_encode("refs/pr/1", false) == "refs%2Fpr%2F1");
  CHECK(url_encode("unet/a b.json", true) == "unet/a%20b.json");
  CHECK(hub_file_url("http://h", "o/n", "refs/pr/1", "unet/x.json") ==
        "http://h/o/n/resolve/refs%2Fpr%2F1/unet/x.json");
}

TEST_CASE("sdxl takes its seven folders and model_index.json, safetensors and tokenizer files, plain weights first") {
  const auto files = paths_of(select_hub_files(listing_of(sdxl_repo()), {"sdxl", {}, ""}));
  const std::vector<std::string> expected = {
      "model_index.json",
      "scheduler/scheduler_config.json",
      "text_encoder/config.json",
      "text_encoder/model.safetensors",
      "text_encoder_2/config.json",
      "text_encoder_2/model-00001-of-00002.safetensors",
      "text_encoder_2/model-00002-of-00002.safetensors",
      "text_encoder_2/model.safetensors.index.json",
      "tokenizer/merges.txt",
      "tokenizer/vocab.json",
      "tokenizer_2/merges.txt",
      "tokenizer_2/special_tokens_map.json",
      "tokenizer_2/vocab.json",
      "unet/config.json",
      "unet/diffusion_pytorch_model.safetensors",
      "vae/config.json",
      "vae/diffusion_pytorch_model.fp16.safetensors",  // the only weights vae/ has
  };
  CHECK(files == expected);
}

TEST_CASE("a preferred variant, --include globs, and a repo without the family's backbone") {
  const auto listing = listing_of(sdxl_repo());
  const auto fp16 = paths_of(select_hub_files(listing, {"sdxl", {}, "fp16"}));
  CHECK(std::count(fp16.begin(), fp16.end(), "unet/diffusion_pytorch_model.fp16.safetensors") == 1);
  CHECK(std::count(fp16.begin(), fp16.end(), "unet/diffusion_pytorch_model.safetensors") == 0);
  CHECK(std::count(fp16.begin(), fp16.end(), "text_encoder_2/model.safetensors.index.fp16.json") == 1);
  CHECK(std::count(fp16.begin(), fp16.end(), "text_encoder_2/model-00001-of-00002.safetensors") == 0);

  const auto te = paths_of(select_hub_files(listing, {"", {"text_encoder/*", "model_index.json"}, ""}));
  CHECK(te ==
        std::vector<std::string>{"model_index.json", "text_encoder/config.json", "text_encoder/model.safetensors"});

  const auto message = error_of([&] { select_hub_files(listing, {"flux", {}, ""}); });
  CHECK(contains(message, "has no transformer/"));
  CHECK(contains(message, "flux"));
  CHECK(contains(error_of([&] { select_hub_files(listing, {"", {"nothing/*"}, ""}); }), "nothing to fetch"));
  CHECK(contains(error_of([] { family_components("sd9"); }), "known: auraflow"));
}

TEST_CASE("a fetch fills the cache folder, the repo id resolves to it, and a second fetch downloads nothing") {
  ScratchDir dir("repa-hub");
  HubEnvironment env(dir);
  FakeHubServer hub;
  const auto repo = sdxl_repo();
  hub.add_repo("stabilityai/sdxl", repo);

  CHECK(contains(error_of([] { resolve_model_source("stabilityai/sdxl", "pretrained_model_name_or_path", "sdxl"); }),
                 "`repa-train fetch stabilityai/sdxl --family sdxl`"));

  auto r = request_for(hub, "stabilityai/sdxl", "sdxl");
  std::size_t files_seen = 0;
  uint64_t last_progress = 0;
  r.on_file = [&](std::size_t, std::size_t count, const HubFile&, bool skipped) {
    ++files_seen;
    CHECK(count == 17);
    CHECK_FALSE(skipped);
  };
  r.on_progress = [&](const DownloadProgress& p) { last_progress = p.received; };
  const auto result = fetch_hub_model(r);
  const auto folder = dir.file("cache/repa-studio/models/stabilityai/sdxl");
  CHECK(result.folder == folder);
  CHECK(result.commit == repo.commit);
  CHECK(result.downloaded == 17);
  CHECK(files_seen == 17);
  CHECK(last_progress > 0);
  for (const auto& path : {"unet/diffusion_pytorch_model.safetensors", "tokenizer_2/merges.txt", "model_index.json",
                           "text_encoder_2/model-00002-of-00002.safetensors"})
    CHECK(repa::test::read_bytes(folder + "/" + path) == repo.files.at(path));
  CHECK_FALSE(fs::exists(folder + "/unet/diffusion_pytorch_model.fp16.safetensors"));
  CHECK_FALSE(fs::exists(folder + "/unet/diffusion_pytorch_model.bin"));
  CHECK_FALSE(fs::exists(folder + "/safety_checker"));
  CHECK(resolve_model_source("stabilityai/sdxl") == folder);
  CHECK(resolve_model_source(folder) == folder);
  // Files are read from the listed commit, not the moving branch.
  bool pinned = false;
  for (const auto& q : hub.requests())
    if (q.path == "/stabilityai/sdxl/resolve/" + repo.commit + "/unet/diffusion_pytorch_model.safetensors")
      pinned = true;
  CHECK(pinned);

  hub.clear_requests();
  const auto again = fetch_hub_model(request_for(hub, "stabilityai/sdxl", "sdxl"));
  CHECK(again.skipped == 17);
  CHECK(again.downloaded == 0);
  CHECK(hub.requests().size() == 1);  // the listing only

  // A damaged file is noticed by its digest and fetched again.
  repa::test::write_bytes(folder + "/unet/diffusion_pytorch_model.safetensors", payload(200000, 99));
  fs::remove(folder + "/" + kHubFetchRecord);
  const auto repaired = fetch_hub_model(request_for(hub, "stabilityai/sdxl", "sdxl"));
  CHECK(repaired.downloaded == 1);
  CHECK(repa::test::read_bytes(folder + "/unet/diffusion_pytorch_model.safetensors") ==
        repo.files.at("unet/diffusion_pytorch_model.safetensors"));
}

TEST_CASE("a dropped connection keeps the partial file and the next fetch resumes it with a Range") {
  ScratchDir dir("repa-hub");
  HubEnvironment env(dir);
  FakeHubServer hub;
  const auto repo = sdxl_repo();
  hub.add_repo("o/m", repo);
  const std::string unet = "unet/diffusion_pytorch_model.safetensors";
  hub.drop_next_download(unet, 70000);
  auto r = request_for(hub, "o/m", "");
  r.revision = repo.commit;
  r.destination = dir.file("out");
  bool threw = false;
  try {
    fetch_hub_model(r);
  } catch (const repa::InputError&) {
    FAIL("a dropped connection is no input error");
  } catch (const repa::Error& e) {
    threw = true;
    CHECK(contains(e.what(), "run the same command again to resume"));
  }
  CHECK(threw);
  CHECK(fs::file_size(dir.file("out/" + unet + ".part")) == 70000);
  CHECK(contains(error_of([] { resolve_model_source("o/m"); }), "repa-train fetch o/m"));

  hub.clear_requests();
  const auto result = fetch_hub_model(r);
  CHECK(repa::test::read_bytes(dir.file("out/" + unet)) == repo.files.at(unet));
  CHECK_FALSE(fs::exists(dir.file("out/" + unet + ".part")));
  bool resumed = false;
  for (const auto& q : hub.requests())
    if (contains(q.path, unet) && q.range == "bytes=70000-") resumed = true;
  CHECK(resumed);
  CHECK(result.downloaded_bytes < result.total_bytes);  // the resumed bytes were not fetched twice
}

TEST_CASE("a gated repo: 401 without a token, 403 with a token that lacks access, files with the right one") {
  ScratchDir dir("repa-hub");
  HubEnvironment env(dir);
  FakeHubServer hub;
  auto repo = sdxl_repo();
  repo.gated = true;
  hub.add_repo("black-forest-labs/gated", repo);
  hub.set_accepted_token("hf_good");

  auto r = request_for(hub, "black-forest-labs/gated", "sdxl");
  const auto no_token = error_of([&] { fetch_hub_model(r); });
  CHECK(contains(no_token, "HTTP 401"));
  CHECK(contains(no_token, "Accept its licence at " + hub.endpoint() + "/black-forest-labs/gated"));
  CHECK(contains(no_token, "HF_TOKEN"));

  r.token = "hf_other";
  r.token_source = "$HF_TOKEN";
  const auto wrong = error_of([&] { fetch_hub_model(r); });
  CHECK(contains(wrong, "HTTP 403"));
  CHECK(contains(wrong, "the token from $HF_TOKEN"));
  CHECK(contains(wrong, "accept the licence"));

  // The token file of the Hub's own tools, under $HF_HOME.
  fs::create_directories(dir.file("hf"));
  repa::test::write_bytes(dir.file("hf/token"), "hf_good\n");
  ::setenv("HF_HOME", dir.file("hf").c_str(), 1);
  std::string source;
  r.token = hub_token(&source);
  CHECK(r.token == "hf_good");
  CHECK(source == dir.file("hf/token"));
  ::setenv("HF_TOKEN", "hf_env", 1);
  CHECK(hub_token() == "hf_env");  // the variable wins over the file
  ::unsetenv("HF_TOKEN");

  fetch_hub_model(r);
  CHECK(fs::exists(dir.file("cache/repa-studio/models/black-forest-labs/gated/unet/config.json")));
  for (const auto& q : hub.requests())
    if (contains(q.path, "/resolve/")) CHECK(q.authorization == "Bearer hf_good");
}

TEST_CASE("unknown repos and revisions, a wrong digest, and unsafe paths are named") {
  ScratchDir dir("repa-hub");
  HubEnvironment env(dir);
  FakeHubServer hub;
  auto repo = sdxl_repo();
  hub.add_repo("o/m", repo);

  const auto unknown = error_of([&] { fetch_hub_model(request_for(hub, "o/missing", "sdxl")); });
  CHECK(contains(unknown, "no model repository o/missing"));
  CHECK(contains(unknown, "HTTP 404"));
  auto r = request_for(hub, "o/m", "sdxl");
  r.revision = "v9";
  CHECK(contains(error_of([&] { fetch_hub_model(r); }), "revision 'v9' does not exist in o/m"));

  hub.misreport_sha256("unet/diffusion_pytorch_model.safetensors", std::string(64, 'a'));
  r.revision = "main";
  r.destination = dir.file("bad");
  bool mismatch = false;
  try {
    fetch_hub_model(r);
  } catch (const repa::Error& e) {
    mismatch = contains(e.what(), "sha256 mismatch");
  }
  CHECK(mismatch);
  CHECK_FALSE(fs::exists(dir.file("bad/unet/diffusion_pytorch_model.safetensors")));
  CHECK(contains(error_of([] { resolve_model_source("o/m"); }), "not fetched yet"));

  auto evil = sdxl_repo();
  evil.files["unet/../../escape.json"] = "{}";
  hub.add_repo("o/evil", evil);
  CHECK(contains(error_of([&] { fetch_hub_model(request_for(hub, "o/evil", "sdxl")); }), "unsafe path"));
  CHECK_FALSE(fs::exists(dir.file("cache/repa-studio/escape.json")));
}
