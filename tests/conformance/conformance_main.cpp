// Runs every conformance fixture of a directory and prints one line per fixture: file, kind, max abs
// error, PASS / FAIL / PENDING. Exit status 1 on any failure, unreadable fixture, unknown kind or empty
// directory.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/base/threads.h"
#include "tests/conformance/fixture.h"

namespace {

// Kinds whose implementation is still being built: printed as PENDING, never PASS. A kind leaves this list
// when its checker lands (a pending kind that has a checker is reported, so the list cannot go stale).
const std::set<std::string> kPendingKinds = {
    // the large text encoders and the Sana / Flux2 autoencoders
    "gemma2_encoder_forward",  "umt5_encoder_forward", "llama_encoder_forward", "mistral_encoder_forward",
    "chatglm_encoder_forward", "dc_ae_forward",        "flux2_vae_forward"};

// Every kind the fixtures' README defines; anything else is an unknown kind and fails.
std::set<std::string> known_kinds() {
  std::set<std::string> kinds = {
      "coefficient_schedule", "crepa_image_loss", "urepa_loss",     "dinov2_forward",
      "sit_forward",          "unet2d_forward",   "autoencoder_kl",
  };
  kinds.insert({"pixart_transformer_forward", "sana_transformer_forward", "auraflow_transformer_forward",
                "lumina2_transformer_forward", "hidream_transformer_forward"});
  kinds.insert({"clip_tokenize", "t5_tokenize", "clip_text_forward", "t5_encoder_forward"});
  kinds.insert("lora_adapter");
  kinds.insert({"sd3_transformer_forward", "flux_transformer_forward", "chroma_transformer_forward",
                "flux2_transformer_forward"});
  kinds.insert(kPendingKinds.begin(), kPendingKinds.end());
  return kinds;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  repa::configure_torch_threads();
  const std::set<std::string> kKnownKinds = known_kinds();
  std::string dir = REPA_DEFAULT_CONFORMANCE_DIR;
  if (const char* env = std::getenv("REPA_CONFORMANCE_DIR")) dir = env;
  if (argc > 1) dir = argv[1];

  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") files.push_back(entry.path());
  if (ec) {
    std::printf("conformance: cannot read directory %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::printf("conformance: no fixtures (*.safetensors) in %s\n", dir.c_str());
    return 1;
  }

  int passed = 0, failed = 0, pending = 0;
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    std::string kind = "?";
    try {
      repa::conformance::Fixture fixture(path.string());
      kind = fixture.kind();
      if (!kKnownKinds.count(kind)) {
        std::printf("%-56s %-28s %12s  FAIL  unknown kind\n", name.c_str(), kind.c_str(), "-");
        ++failed;
        continue;
      }
      if (kPendingKinds.count(kind)) {
        if (repa::conformance::find_kind(kind)) {
          std::printf("%-56s %-28s %12s  FAIL  a checker is linked: remove the kind from the pending list\n",
                      name.c_str(), kind.c_str(), "-");
          ++failed;
          continue;
        }
        std::printf("%-56s %-28s %12s  PENDING\n", name.c_str(), kind.c_str(), "-");
        ++pending;
        continue;
      }
      const auto* check = repa::conformance::find_kind(kind);
      if (!check) {
        std::printf("%-56s %-28s %12s  FAIL  no checker linked for this kind\n", name.c_str(), kind.c_str(), "-");
        ++failed;
        continue;
      }
      const auto result = (*check)(fixture);
      if (result.checked() == 0) {
        std::printf("%-56s %-28s %12s  FAIL  nothing was compared\n", name.c_str(), kind.c_str(), "-");
        ++failed;
        continue;
      }
      std::printf("%-56s %-28s %12.3e  %s\n", name.c_str(), kind.c_str(), result.max_abs_error(),
                  result.passed() ? "PASS" : "FAIL");
      for (const auto& failure : result.failures()) std::printf("    %s\n", failure.c_str());
      result.passed() ? ++passed : ++failed;
    } catch (const repa::conformance::PendingFixture& e) {
      std::printf("%-56s %-28s %12s  PENDING  %s\n", name.c_str(), kind.c_str(), "-", e.what());
      ++pending;
    } catch (const std::exception& e) {
      std::printf("%-56s %-28s %12s  FAIL  %s\n", name.c_str(), kind.c_str(), "-", e.what());
      ++failed;
    }
  }
  std::printf("conformance: %d fixtures in %s: %d passed, %d failed, %d pending\n", static_cast<int>(files.size()),
              dir.c_str(), passed, failed, pending);
  return failed == 0 ? 0 : 1;
}
