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
        "Usage: repa-train validate CONFIG [--preset P] [--set key=value]... [--print] [--check-paths] [--export]\n"
        "  CONFIG may be left out when --preset is given. Problems and warnings go to stderr, one per line;\n"
        "  exit code 2 when there is any problem (warnings alone: 0). Warnings name keys SimpleTuner's loader\n"
        "  drops and options the studio's trainer does not use (exported to SimpleTuner). --export checks the\n"
        "  config for a SimpleTuner export instead of a native run. --print writes the resolved config to stdout.\n");
    return args.empty() ? 2 : 0;
  }
  const auto parsed = config::parse_config_arguments(args);
  bool print = false, check_paths = false;
  config::Purpose purpose = config::Purpose::Run;
  for (const auto& flag : parsed.flags) {
    if (flag == "--print")
      print = true;
    else if (flag == "--check-paths")
      check_paths = true;
    else if (flag == "--export")
      purpose = config::Purpose::Export;
    else {
      std::fprintf(stderr, "repa-train validate: unknown argument '%s'\n", flag.c_str());
      return 2;
    }
  }
  if (parsed.config_path.empty() && parsed.preset.empty()) {
    std::fprintf(stderr, "repa-train validate: give a CONFIG file or --preset\n");
    return 2;
  }
  const auto user =
      parsed.config_path.empty() ? nlohmann::json::object() : config::read_config_file(parsed.config_path);
  auto report = config::load_config(user, parsed.preset, parsed.overrides);
  if (check_paths && report.problems.empty())
    for (auto& problem : config::check_paths(report.config)) report.problems.push_back(std::move(problem));
  const std::string source = parsed.config_path.empty() ? "preset " + parsed.preset : parsed.config_path;
  for (const auto& note : report.notes) std::fprintf(stderr, "info: %s\n", note.c_str());
  for (const auto& warning : report.warnings)
    std::fprintf(stderr, "warning: %s\n", config::format_problem(warning).c_str());
  std::vector<config::Problem> blocking;
  for (const auto& problem : report.problems) {
    if (config::blocks(problem, purpose))
      blocking.push_back(problem);
    else  // a RunError while checking for export: SimpleTuner runs it, the studio's trainer would not
      std::fprintf(stderr, "warning: %s (a native run refuses it)\n", config::format_problem(problem).c_str());
  }
  if (!blocking.empty()) {
    std::fprintf(stderr, "%s\n", config::format_problems(blocking, source).c_str());
    return 2;
  }
  if (print)
    std::printf("%s\n", report.config.dump(2).c_str());
  else
    std::printf("%s: valid%s\n", source.c_str(), check_paths ? " (paths checked)" : "");
  return 0;
}

}  // namespace repa::app
