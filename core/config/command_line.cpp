#include "core/config/command_line.h"

#include <algorithm>

#include "core/base/error.h"

namespace repa::config {

ConfigArguments parse_config_arguments(const std::vector<std::string>& args,
                                       const std::vector<std::string>& with_value) {
  ConfigArguments parsed;
  const auto value_after = [&](std::size_t& i) -> const std::string& {
    if (i + 1 >= args.size()) throw InputError(args[i] + " expects a value");
    return args[++i];
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--preset") {
      parsed.preset = value_after(i);
    } else if (arg.rfind("--preset=", 0) == 0) {
      parsed.preset = arg.substr(9);
    } else if (arg == "--set") {
      parsed.overrides.push_back(value_after(i));
    } else if (arg.rfind("--set=", 0) == 0) {
      parsed.overrides.push_back(arg.substr(6));
    } else if (std::find(with_value.begin(), with_value.end(), arg) != with_value.end()) {
      parsed.flags.push_back(arg);
      parsed.flags.push_back(value_after(i));
    } else if (arg.rfind("-", 0) == 0 && arg != "-") {
      parsed.flags.push_back(arg);
    } else if (parsed.config_path.empty()) {
      parsed.config_path = arg;
    } else {
      throw InputError("one CONFIG file expected, got '" + parsed.config_path + "' and '" + arg + "'");
    }
  }
  return parsed;
}

}  // namespace repa::config
