// Where the tokenizer fixtures' vocabulary files live: `tokenizers/` beside the fixture's folder (also beside
// the folder its canonical path is in, for a directory of symlinks), $REPA_TOKENIZERS_DIR, or the project's
// copy; and a check of the sha256 the fixture names.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/encoders/sha256.h"

namespace repa::conformance {

inline std::string tokenizer_file(const std::string& fixture_path, const nlohmann::json& config,
                                  const std::string& file_key, const std::string& sha_key) {
  namespace fs = std::filesystem;
  const auto relative = config.at(file_key).get<std::string>();
  std::vector<fs::path> roots = {fs::path(fixture_path).parent_path() / ".." / "tokenizers"};
  std::error_code ec;
  const auto canonical = fs::canonical(fixture_path, ec);
  if (!ec) roots.push_back(canonical.parent_path() / ".." / "tokenizers");
  if (const char* env = std::getenv("REPA_TOKENIZERS_DIR")) roots.emplace_back(env);
  roots.push_back(fs::path(REPA_DEFAULT_CONFORMANCE_DIR) / ".." / "tokenizers");
  std::string tried;
  for (const auto& root : roots) {
    const auto path = root / relative;
    if (!fs::is_regular_file(path)) {
      tried += "\n    " + path.lexically_normal().string();
      continue;
    }
    const auto digest = repa::encoders::sha256_file(path.string());
    const auto want = config.value(sha_key, std::string());
    if (!want.empty() && digest != want)
      throw InputError("tokenizer file '" + path.string() + "' has sha256 " + digest + ", the fixture names " + want);
    return path.lexically_normal().string();
  }
  throw InputError("tokenizer file '" + relative + "' (config." + file_key + ") not found; tried:" + tried);
}

}  // namespace repa::conformance
