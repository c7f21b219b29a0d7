#include "core/encoders/encoder_catalog.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/base/error.h"

namespace repa::encoders {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n\f\v");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n\f\v");
  return s.substr(first, last - first + 1);
}

EncoderSpec spec(const std::string& name, const std::string& size, bool registers, const std::string& hf_repo) {
  // Sizes and digests of the upstream files are not recorded here yet (no way to read them offline);
  // fetch then reports that it skips those checks.
  return {name, size, registers, hf_repo, "https://huggingface.co/" + hf_repo + "/resolve/main/model.safetensors",
          0, ""};
}

}  // namespace

const std::vector<EncoderSpec>& known_encoders() {
  static const std::vector<EncoderSpec> table = {
      spec("dinov2_vits14", "s", false, "facebook/dinov2-small"),
      spec("dinov2_vitb14", "b", false, "facebook/dinov2-base"),
      spec("dinov2_vitl14", "l", false, "facebook/dinov2-large"),
      spec("dinov2_vitg14", "g", false, "facebook/dinov2-giant"),
      spec("dinov2_vits14_reg", "s", true, "facebook/dinov2-with-registers-small"),
      spec("dinov2_vitb14_reg", "b", true, "facebook/dinov2-with-registers-base"),
      spec("dinov2_vitl14_reg", "l", true, "facebook/dinov2-with-registers-large"),
      spec("dinov2_vitg14_reg", "g", true, "facebook/dinov2-with-registers-giant"),
  };
  return table;
}

std::string simpletuner_encoder_name(const std::string& value) {
  const auto name = trim(value);
  if (name.empty()) return kDefaultEncoder;
  // SimpleTuner's table (CrepaRegularizer._resolve_encoder_name), looked up by the lower-cased name.
  static const std::map<std::string, std::string> aliases = {
      {"dino_v2_g", "dinov2_vitg14"}, {"dinov2_g", "dinov2_vitg14"}, {"dinov2-vitg14", "dinov2_vitg14"},
      {"dino_v2_s", "dinov2_vits14"}, {"dinov2_s", "dinov2_vits14"}, {"dinov2-vitb14", "dinov2_vitb14"},
  };
  const auto it = aliases.find(lower(name));
  return it == aliases.end() ? name : it->second;
}

const EncoderSpec& find_encoder(const std::string& name_or_alias) {
  const auto name = simpletuner_encoder_name(name_or_alias);
  for (const auto& e : known_encoders())
    if (e.name == name || e.hf_repo == name) return e;
  std::string known;
  for (const auto& e : known_encoders()) known += (known.empty() ? "" : ", ") + e.name;
  throw InputError("unknown encoder '" + name_or_alias + "'" +
                   (name != name_or_alias ? " (resolved to '" + name + "')" : std::string()) + "; known: " + known +
                   " and SimpleTuner's aliases dino_v2_g, dinov2_g, dinov2-vitg14, dino_v2_s, dinov2_s, "
                   "dinov2-vitb14; or give a TorchScript file as the encoder weights");
}

}  // namespace repa::encoders
