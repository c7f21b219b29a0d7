// repa-train export CONFIG --format simpletuner|studio --out DIR: write the resolved config for
// SimpleTuner (config.json with SimpleTuner's names only, multidatabackend.json for the dataset folder) or
// for the studio (the full resolved config), saying what a SimpleTuner export leaves out and why.
#include <cstdio>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/config/command_line.h"
#include "core/config/export.h"
#include "core/config/loader.h"

namespace repa::app {

int export_command(const Args& args) {
  if (args.empty() || args[0] == "--help") {
    std::printf(
        "Usage: repa-train export CONFIG --format simpletuner|studio --out DIR [--preset P] [--set key=value]...\n"
        "  simpletuner: DIR/config.json with SimpleTuner's option names only, plus DIR/multidatabackend.json\n"
        "               when studio.dataset_dir is set, and DIR/config.env (accelerate launch settings for\n"
        "               SimpleTuner's train.sh) when studio.num_processes > 1; prints what was left out and why.\n"
        "  studio:      DIR/config.json with every option resolved.\n");
    return args.empty() ? 2 : 0;
  }
  const auto parsed = config::parse_config_arguments(args, {"--format", "--out"});
  std::string format, out_dir;
  for (std::size_t i = 0; i < parsed.flags.size(); ++i) {
    const auto& flag = parsed.flags[i];
    if (flag == "--format")
      format = parsed.flags[++i];
    else if (flag == "--out")
      out_dir = parsed.flags[++i];
    else {
      std::fprintf(stderr, "repa-train export: unknown argument '%s'\n", flag.c_str());
      return 2;
    }
  }
  if (format != "simpletuner" && format != "studio") {
    std::fprintf(stderr, "repa-train export: --format must be simpletuner or studio, got '%s'\n", format.c_str());
    return 2;
  }
  if (out_dir.empty()) {
    std::fprintf(stderr, "repa-train export: --out DIR is required\n");
    return 2;
  }
  const auto user =
      parsed.config_path.empty() ? nlohmann::json::object() : config::read_config_file(parsed.config_path);
  auto report = config::load_config(user, parsed.preset, parsed.overrides);
  std::vector<config::Problem> blocking;
  for (auto& problem : report.problems)  // options the studio's trainer refuses still export: SimpleTuner runs them
    (config::blocks(problem, config::Purpose::Export) ? blocking : report.warnings).push_back(problem);
  const std::string source = parsed.config_path.empty() ? "preset " + parsed.preset : parsed.config_path;
  if (!blocking.empty()) throw InputError(config::format_problems(blocking, source));
  for (const auto& warning : report.warnings)
    std::fprintf(stderr, "warning: %s\n", config::format_problem(warning).c_str());
  const nlohmann::json& resolved = report.config;
  if (format == "studio") {
    config::write_studio_export(resolved, out_dir);
    std::printf("wrote %s/config.json (studio, every option resolved)\n", out_dir.c_str());
    return 0;
  }
  const auto exported = config::write_simpletuner_export(resolved, out_dir);
  std::printf("wrote %s/config.json (SimpleTuner)\n", out_dir.c_str());
  if (!exported.multidatabackend.is_null()) std::printf("wrote %s/multidatabackend.json\n", out_dir.c_str());
  for (const auto& key : config::ignored_simpletuner_keys(resolved))
    std::printf("kept:    %s (SimpleTuner option the studio does not use, passed through unchanged)\n", key.c_str());
  for (const auto& line : exported.dropped) std::printf("dropped: %s\n", line.c_str());
  return 0;
}

}  // namespace repa::app
