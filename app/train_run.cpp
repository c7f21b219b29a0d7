// repa-train run --config run.json [--preset P] [--set key=value]... [--events stdio]: a training run, the
// worker the studio launches. Events as JSON lines on stdout with --events stdio, commands on stdin.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/config/command_line.h"
#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/train/trainer.h"

namespace repa::app {

namespace {

void print_run_help() {
  std::printf(
      "Usage: repa-train run [--config] CONFIG.json [--preset NAME] [--set key=value]... [--events stdio]\n"
      "       repa-train run --preset demo [--set key=value]...\n\n"
      "Trains the config's SiT (REPA) or UNet (U-REPA) and writes the run folder <output_dir>/<studio.run_name>:\n"
      "config.json, metrics.jsonl, events.jsonl, train.log, status.json, checkpoints/, samples/.\n"
      "  --events stdio  one JSON event per line on stdout (docs/events.md); commands are read from stdin\n"
      "                  (stop, pause, resume, sample, checkpoint), as JSON lines or bare words\n"
      "Without --events, a terminal gets a progress bar. SIGINT/SIGTERM write a checkpoint and stop.\n"
      "resume_from_checkpoint=latest (or a checkpoint folder) continues a run where it stopped.\n");
}

}  // namespace

nlohmann::json resolve_run_config(const Args& args, std::string* events_mode, std::vector<std::string>* warnings) {
  std::vector<std::string> rest;
  std::string config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" || args[i] == "--events") {
      if (i + 1 >= args.size()) throw InputError(args[i] + " expects a value");
      (args[i] == "--config" ? config_path : *events_mode) = args[i + 1];
      ++i;
    } else {
      rest.push_back(args[i]);
    }
  }
  auto parsed = config::parse_config_arguments(rest);
  if (!parsed.flags.empty()) throw InputError("unknown argument '" + parsed.flags.front() + "' (see repa-train run --help)");
  if (!config_path.empty() && !parsed.config_path.empty())
    throw InputError("two configs given: '" + config_path + "' and '" + parsed.config_path + "'");
  if (config_path.empty()) config_path = parsed.config_path;
  if (config_path.empty() && parsed.preset.empty()) throw InputError("name a config file (--config FILE) or a --preset");
  const auto user = config_path.empty() ? nlohmann::json::object() : config::read_json_file(config_path);
  auto report = config::load_config(user, parsed.preset, parsed.overrides);
  std::vector<config::Problem> blocking;
  for (const auto& problem : report.problems)
    if (config::blocks(problem, config::Purpose::Run)) blocking.push_back(problem);
  if (!blocking.empty())
    throw InputError(config::format_problems(blocking, config_path.empty() ? "config" : config_path));
  // Warnings on declared options the trainer finds again in the resolved config and logs itself; the keys the
  // loader dropped (SimpleTuner drops them too) are gone from it, so they travel with the options.
  if (warnings)
    for (const auto& warning : report.warnings)
      if (config::find_option(warning.key) == nullptr) warnings->push_back(config::format_problem(warning));
  return std::move(report.config);
}

int run_command(const Args& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      print_run_help();
      return 0;
    }
  std::string events_mode;
  train::TrainerOptions options;
  const auto config = resolve_run_config(args, &events_mode, &options.config_warnings);
  if (!events_mode.empty() && events_mode != "stdio")
    throw InputError("--events '" + events_mode + "' is unknown (the only stream is 'stdio')");
  options.events_to_stdout = events_mode == "stdio";
  options.progress_bar = !options.events_to_stdout && ::isatty(STDERR_FILENO);
  options.command_fd = options.events_to_stdout ? STDIN_FILENO : -1;
  options.handle_signals = true;
  train::Trainer trainer(config, options);
  if (!options.events_to_stdout) std::fprintf(stderr, "run folder: %s\n", trainer.run_directory().path().c_str());
  return trainer.run();
}

}  // namespace repa::app
