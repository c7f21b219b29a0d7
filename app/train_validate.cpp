// repa-train validate CONFIG: load a config the way a run would (defaults < preset < file < --set) and
// report every problem at once; --print shows the resolved config, --check-paths checks the files a run
// needs on this machine.
#include <cstdio>

#include "app/train_commands.h"
#include "core/config/command_line.h"
#include "core/config/export.h"
#include "core/config/loader.h"

namespace repa::app {

int validate_command(const Args& args) {
  if (args.empty() || args[0] == "--help") {
    std::printf(
        "Usage: repa-train validate CONFIG [--preset P] [--set key=value]... [--print] [--check-paths]\n"
        "  CONFIG may be left out when --preset is given. Problems go to stderr, one per line; exit code 2\n"
        "  when there is any. --print writes the resolved config (every option) to stdout.\n");
    return args.empty() ? 2 : 0;
  }
  const auto parsed = config::parse_config_arguments(args);
  bool print = false, check_paths = false;
  for (const auto& flag : parsed.flags) {
    if (flag == "--print")
      print = true;
    else if (flag == "--check-paths")
      check_paths = true;
    else {
      std::fprintf(stderr, "repa-train validate: unknown argument '%s'\n", flag.c_str());
      return 2;
    }
  }
  if (parsed.config_path.empty() && parsed.preset.empty()) {
    std::fprintf(stderr, "repa-train validate: give a CONFIG file or --preset\n");
    return 2;
  }
  const auto user = parsed.config_path.empty() ? nlohmann::json::object() : config::read_json_file(parsed.config_path);
  auto report = config::load_config(user, parsed.preset, parsed.overrides);
  if (check_paths && report.problems.empty())
    for (auto& problem : config::check_paths(report.config)) report.problems.push_back(std::move(problem));
  const std::string source = parsed.config_path.empty() ? "preset " + parsed.preset : parsed.config_path;
  for (const auto& note : report.notes) std::fprintf(stderr, "info: %s\n", note.c_str());
  if (!report.problems.empty()) {
    std::fprintf(stderr, "%s\n", config::format_problems(report.problems, source).c_str());
    return 2;
  }
  if (print)
    std::printf("%s\n", report.config.dump(2).c_str());
  else
    std::printf("%s: valid%s\n", source.c_str(), check_paths ? " (paths checked)" : "");
  return 0;
}

}  // namespace repa::app
