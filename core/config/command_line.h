// The arguments repa-train's config commands share: CONFIG [--preset P] [--set key=value]...
#pragma once
#include <string>
#include <vector>

namespace repa::config {

struct ConfigArguments {
  std::string config_path;  // "" when only a preset is given
  std::string preset;
  std::vector<std::string> overrides;  // "key=value", in order
  std::vector<std::string> flags;      // the other arguments, in order, for the command to read
};

// Takes CONFIG, --preset P and --set k=v (also --set=k=v); leaves the rest in `flags`. Flags named in
// `with_value` keep their value as the next entry. Throws InputError for a missing value or a second CONFIG.
ConfigArguments parse_config_arguments(const std::vector<std::string>& args,
                                       const std::vector<std::string>& with_value = {});

}  // namespace repa::config
