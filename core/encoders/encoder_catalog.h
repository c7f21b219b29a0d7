// The DINOv2 encoders the studio knows by name: SimpleTuner's names and aliases, the architecture, and where
// `repa-train fetch` downloads each one's Hugging Face model.safetensors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace repa::encoders {

struct EncoderSpec {
  std::string name;       // torch.hub entry point: dinov2_vits14, ..., dinov2_vitg14_reg
  std::string size;       // "s", "b", "l", "g" (Dinov2Config::for_size)
  bool registers = false;
  std::string hf_repo;    // facebook/dinov2-small, facebook/dinov2-with-registers-small, ...
  std::string url;        // the repository's model.safetensors
  uint64_t bytes = 0;     // 0: not recorded, the size check is skipped with a notice
  std::string sha256;     // "": not recorded, the digest check is skipped with a notice
};

// Every named encoder, in one table.
const std::vector<EncoderSpec>& known_encoders();

// SimpleTuner's resolution of crepa_model / crepa_encoder: empty → dinov2_vitg14; surrounding spaces
// dropped; its six aliases matched case-insensitively; anything else returned unchanged.
std::string simpletuner_encoder_name(const std::string& value);

// The spec for a name after SimpleTuner's aliases; a Hugging Face repository id (facebook/dinov2-base) is
// accepted too. Throws InputError listing the known names.
const EncoderSpec& find_encoder(const std::string& name_or_alias);

// The default teacher, as in SimpleTuner.
inline constexpr const char* kDefaultEncoder = "dinov2_vitg14";

}  // namespace repa::encoders
