// repa-train run --config run.json [--preset P] [--set key=value]... [--events stdio]: a training run, the
// worker the studio launches. Events as JSON lines on stdout with --events stdio, commands on stdin.
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "app/local_launch.h"
#include "app/train_commands.h"
#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/base/memory.h"
#include "core/base/stop_request.h"
#include "core/config/command_line.h"
#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/io/atomic_file.h"
#include "core/train/config_values.h"
#include "core/train/memory_estimate.h"
#include "core/train/run_directory.h"
#include "core/train/trainer.h"

namespace repa::app {

namespace {

void print_run_help() {
  std::printf(
      "Usage: repa-train run [--config] CONFIG.json [--preset NAME] [--set key=value]... [--events stdio]\n"
      "       repa-train run --preset demo [--set key=value]...\n\n"
      "Trains the config's SiT (REPA) or UNet (U-REPA) and writes the run folder <output_dir>/<studio.run_name>:\n"
      "config.json, metrics.jsonl, events.jsonl, train.log, status.json, checkpoints/, samples/; at the end a\n"
      "LoRA run's pytorch_lora_weights.safetensors, or a full text-to-image run's pipeline/ (diffusers) and, for\n"
      "sd1x/sd2x/sdxl, <run_name>.safetensors (A1111/ComfyUI).\n"
      "  --events stdio  one JSON event per line on stdout (docs/events.md); commands are read from stdin\n"
      "                  (stop, pause, resume, sample, checkpoint), as JSON lines or bare words\n"
      "Without --events, a terminal gets a progress bar. SIGINT/SIGTERM/SIGHUP write a checkpoint and stop;\n"
      "during set-up (dataset, caches, weights) they stop at once and write nothing.\n"
      "A run whose estimated step memory exceeds the machine's available memory is refused (exit 2) unless\n"
      "studio.skip_memory_check is true.\n"
      "resume_from_checkpoint=latest (or a checkpoint folder) continues a run where it stopped.\n"
      "  --nproc-per-node N  data-parallel: N local processes (or studio.num_processes; docs/distributed.md)\n");
}

bool runs_on_cpu(const nlohmann::json& config) {
  const std::string device = train::text_or(train::studio_settings(config), "device", "auto");
  return device == "cpu" || (device == "auto" && !torch::cuda::is_available());
}

// The trainer has bf16 autocast on CUDA only; other formats would silently compute in fp32.
std::string precision_warning(const nlohmann::json& config) {
  const std::string precision = train::text_or(config, "mixed_precision", "no");
  if (precision == "fp16" || precision == "fp8")
    return "mixed_precision \"" + precision + "\": the studio's trainer has no " + precision +
           " path; the run computes in fp32" + (runs_on_cpu(config) ? " (CPU)" : "") +
           " with fp32 weights and checkpoints (use \"bf16\" on CUDA for mixed precision)";
  if (precision == "bf16" && runs_on_cpu(config))
    return "mixed_precision \"bf16\" on CPU: autocast is CUDA-only here; the run computes in fp32";
  return "";
}

// Set-up work polls the stop request between batches, but one long call (a large teacher's forward on a
// CPU, loading big weights) may not return for seconds. After a signal, the watchdog gives set-up a short
// grace and then ends the process itself: nothing has been trained, so nothing is lost.
class SetupWatchdog {
 public:
  explicit SetupWatchdog(std::string run_dir) : run_dir_(std::move(run_dir)), thread_([this] { watch(); }) {}
  ~SetupWatchdog() {
    done_ = true;
    thread_.join();
  }
  SetupWatchdog(const SetupWatchdog&) = delete;
  SetupWatchdog& operator=(const SetupWatchdog&) = delete;

 private:
  static constexpr auto kGrace = std::chrono::milliseconds(800);

  void watch() {
    while (!done_ && stop_signal() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto deadline = std::chrono::steady_clock::now() + kGrace;
    while (!done_ && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (done_) return;
    const std::string message =
        "stopped by a signal during set-up, before the first step; nothing was trained "
        "and no checkpoint was written";
    mark_stopped(message);
    std::fprintf(stderr, "repa-train run: %s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(0);
  }

  // The run folder's status says the run stopped, not that it is still starting.
  void mark_stopped(const std::string& message) const {
    if (run_dir_.empty()) return;
    const std::string status_path = run_dir_ + "/status.json";
    std::ifstream in(status_path);
    if (!in) return;
    std::stringstream text;
    text << in.rdbuf();
    auto status = try_parse_json_bounded(text.str());
    if (!status.is_object()) return;
    status["state"] = "finished";
    status["reason"] = "stopped";
    try {
      io::write_text_atomically(status_path, status.dump(2) + "\n");
      std::ofstream(run_dir_ + "/train.log", std::ios::app) << "info: " << message << "\n";
    } catch (const std::exception&) {
      // Ending is what matters; the status stays as it was.
    }
  }

  std::string run_dir_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

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
  if (!parsed.flags.empty())
    throw InputError("unknown argument '" + parsed.flags.front() + "' (see repa-train run --help)");
  if (!config_path.empty() && !parsed.config_path.empty())
    throw InputError("two configs given: '" + config_path + "' and '" + parsed.config_path + "'");
  if (config_path.empty()) config_path = parsed.config_path;
  if (config_path.empty() && parsed.preset.empty())
    throw InputError("name a config file (--config FILE) or a --preset");
  const auto user = config_path.empty() ? nlohmann::json::object() : config::read_config_file(config_path);
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
  Args run_args = args;  // --nproc-per-node N: this process launches the ranks (app/local_launch.h)
  if (const auto launch = local_launch_for_run(run_args)) return launch_local_processes(*launch);
  std::string events_mode;
  train::TrainerOptions options;
  const auto config = resolve_run_config(run_args, &events_mode, &options.config_warnings);
  if (!events_mode.empty() && events_mode != "stdio")
    throw InputError("--events '" + events_mode + "' is unknown (the only stream is 'stdio')");
  options.events_to_stdout = events_mode == "stdio";
  options.progress_bar = !options.events_to_stdout && ::isatty(STDERR_FILENO);
  options.command_fd = options.events_to_stdout ? STDIN_FILENO : -1;
  options.handle_signals = true;
  // From here on a signal is a stop request that set-up work polls, not the default immediate death.
  train::RunControl::install_signal_handlers();
  if (!train::flag_or(train::studio_settings(config), "skip_memory_check", false)) {
    auto estimate = train::estimate_training_memory(config);
    double gpu_free = 0, gpu_total = 0;
    if (runs_on_cpu(config)) {
      train::check_training_memory(estimate, available_memory_bytes(), total_memory_bytes());
    } else if (cuda_memory_bytes(&gpu_free, &gpu_total)) {
      estimate.data_bytes = 0;  // decoded images stay in host memory
      train::check_training_memory(estimate, gpu_free, gpu_total, "the GPU");
    }
  }
  if (const auto warning = precision_warning(config); !warning.empty()) {
    options.config_warnings.push_back(warning);
    if (!options.events_to_stdout && !options.progress_bar) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }
  std::optional<train::Trainer> trainer;
  {
    // The folder is known in advance when the run is named (the studio always names it).
    const bool named = !train::text_or(train::studio_settings(config), "run_name", "").empty();
    SetupWatchdog watchdog(named ? train::run_directory_for(config) : std::string());
    try {
      trainer.emplace(config, options);
    } catch (const StopRequested& e) {
      std::fprintf(stderr, "repa-train run: %s\n", e.what());
      return 0;
    }
  }
  if (!options.events_to_stdout) std::fprintf(stderr, "run folder: %s\n", trainer->run_directory().path().c_str());
  // A failure inside the loop is logged to train.log and events; say it on stderr too (the terminal's bar
  // already prints error events).
  std::string failure;
  trainer->events().add_listener([&failure](const nlohmann::json& event) {
    if (event.value("type", "") == "error") failure = event.value("message", "");
  });
  const int code = trainer->run();
  if (code != 0 && !options.progress_bar)
    std::fprintf(stderr, "repa-train run: %s (run folder %s)\n", failure.empty() ? "failed" : failure.c_str(),
                 trainer->run_directory().path().c_str());
  return code;
}

}  // namespace repa::app
