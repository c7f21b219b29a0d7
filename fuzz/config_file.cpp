// Fuzzes a config file as repa-train reads it: read_json_file (text to JSON, named errors) then the layering
// and validation of load_config, and the formatting of every problem into the message the user sees.
#include <cstddef>
#include <cstdint>

#include "core/base/error.h"
#include "core/config/loader.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static repa::fuzz::MemoryFile file;
  const std::string& path = file.write(data, size);
  try {
    const nlohmann::json user = repa::config::read_json_file(path);
    const auto report = repa::config::load_config(user, "", {});
    if (!report.config.is_object()) __builtin_trap();  // the resolved config is always complete
    const std::string message = repa::config::format_problems(report.problems, path);
    for (const auto& warning : report.warnings) (void)repa::config::format_problem(warning);
    if (message.empty()) __builtin_trap();
  } catch (const repa::InputError&) {
    // A named rejection (unreadable, not JSON, too deep) is the expected outcome.
  }
  return 0;
}
