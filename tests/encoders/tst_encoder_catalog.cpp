// Encoder names and aliases as SimpleTuner resolves crepa_model, and where their weights are looked for.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/base/error.h"
#include "core/encoders/encoder_catalog.h"
#include "core/encoders/weight_location.h"
#include "tests/test_support.h"

using namespace repa::encoders;

TEST_CASE("SimpleTuner's encoder aliases") {
  CHECK(simpletuner_encoder_name("") == "dinov2_vitg14");
  CHECK(simpletuner_encoder_name("   ") == "dinov2_vitg14");
  CHECK(simpletuner_encoder_name("dino_v2_g") == "dinov2_vitg14");
  CHECK(simpletuner_encoder_name("dinov2_g") == "dinov2_vitg14");
  CHECK(simpletuner_encoder_name("dinov2-vitg14") == "dinov2_vitg14");
  CHECK(simpletuner_encoder_name("dino_v2_s") == "dinov2_vits14");
  CHECK(simpletuner_encoder_name("dinov2_s") == "dinov2_vits14");
  CHECK(simpletuner_encoder_name("dinov2-vitb14") == "dinov2_vitb14");
  // Aliases are matched lower-cased after stripping; other names pass through unchanged (not lower-cased).
  CHECK(simpletuner_encoder_name("  DINO_V2_G ") == "dinov2_vitg14");
  CHECK(simpletuner_encoder_name(" dinov2_vitl14_reg ") == "dinov2_vitl14_reg");
  CHECK(simpletuner_encoder_name("Dinov2_ViTL14") == "Dinov2_ViTL14");
  // Not an alias in SimpleTuner: only the six above.
  CHECK(simpletuner_encoder_name("dinov2_b") == "dinov2_b");
}

TEST_CASE("known encoders: sizes, registers and Hugging Face files") {
  CHECK(known_encoders().size() == 8);
  const auto& g = find_encoder("");
  CHECK(g.name == "dinov2_vitg14");
  CHECK(g.size == "g");
  CHECK_FALSE(g.registers);
  CHECK(g.url == "https://huggingface.co/facebook/dinov2-giant/resolve/main/model.safetensors");
  const auto& sreg = find_encoder("dinov2_vits14_reg");
  CHECK(sreg.registers);
  CHECK(sreg.hf_repo == "facebook/dinov2-with-registers-small");
  CHECK(find_encoder("dinov2_s").name == "dinov2_vits14");
  CHECK(find_encoder("facebook/dinov2-base").name == "dinov2_vitb14");
  CHECK_THROWS_WITH_AS(find_encoder("Dinov2_ViTL14"), doctest::Contains("unknown encoder 'Dinov2_ViTL14'"),
                       repa::InputError);
  CHECK_THROWS_WITH(find_encoder("clip"), doctest::Contains("dinov2_vitb14_reg"));
}

TEST_CASE("weights: explicit path, then the XDG cache, then an error with the fetch command") {
  repa::test::ScratchDir dir("repa-cache");
  ::setenv("XDG_CACHE_HOME", dir.path().c_str(), 1);
  const auto& b = find_encoder("dinov2_vitb14");
  const auto cached = (dir.path() / "repa-studio" / "encoders" / "dinov2_vitb14" / "model.safetensors").string();
  CHECK(cached_weights_path(b) == cached);
  CHECK_THROWS_WITH_AS(resolve_encoder_weights(b),
                       doctest::Contains((cached + " is missing; download them with `repa-train fetch dinov2_vitb14`").c_str()),
                       repa::InputError);
  std::filesystem::create_directories(std::filesystem::path(cached).parent_path());
  repa::test::write_bytes(cached, "x");
  CHECK(resolve_encoder_weights(b) == cached);
  repa::test::write_bytes(dir.file("mine.safetensors"), "x");
  CHECK(resolve_encoder_weights(b, dir.file("mine.safetensors")) == dir.file("mine.safetensors"));
  CHECK_THROWS_WITH_AS(resolve_encoder_weights(b, dir.file("absent.safetensors")),
                       doctest::Contains(dir.file("absent.safetensors").c_str()), repa::InputError);

  // Without XDG_CACHE_HOME (or with it empty) the cache is ~/.cache.
  ::setenv("XDG_CACHE_HOME", "", 1);
  ::setenv("HOME", dir.path().c_str(), 1);
  CHECK(encoder_cache_root() == (dir.path() / ".cache" / "repa-studio" / "encoders").string());
  ::unsetenv("XDG_CACHE_HOME");
  CHECK(encoder_cache_root() == (dir.path() / ".cache" / "repa-studio" / "encoders").string());
}
