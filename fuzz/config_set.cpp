// Fuzzes the command line of repa-train's config commands: the input is split at newlines into up to 8 arguments
// (CONFIG, --preset P, --set key=value, --set=key=value, flags), parsed by parse_config_arguments, and the
// overrides and preset layered over an empty config by load_config.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/base/error.h"
#include "core/config/command_line.h"
#include "core/config/loader.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto args = repa::fuzz::split(text, '\n', 8);
  try {
    const auto parsed = repa::config::parse_config_arguments(args, {"--events", "--output"});
    const auto report = repa::config::load_config(nlohmann::json::object(), parsed.preset, parsed.overrides);
    if (!report.config.is_object()) __builtin_trap();
    (void)repa::config::format_problems(report.problems, "--set");
  } catch (const repa::InputError&) {
    // A missing value or a second CONFIG is a named rejection.
  }
  return 0;
}
