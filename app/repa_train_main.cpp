// repa-train: the headless worker and its tools. Thin: parsing the subcommand and mapping errors to exit
// codes; the work lives in core/.
#include <torch/torch.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <string>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/base/memory.h"
#include "core/base/threads.h"
#include "core/base/version.h"
#include "core/models/sd_pipeline_folder.h"

namespace {

void print_help() {
  std::printf(
      "repa-train %s — train diffusion models with representation alignment (REPA / U-REPA)\n\n"
      "Usage: repa-train [--threads N] COMMAND [ARGS...]\n"
      "       repa-train --version | --help\n\n"
      "Commands:\n",
      repa::kVersion);
  for (const auto& command : repa::app::train_commands()) std::printf("  %-10s %s\n", command.name, command.summary);
  std::printf(
      "\nOptions:\n"
      "  --threads N   LibTorch intra-op threads (default: $REPA_NUM_THREADS, else every core)\n"
      "  --version     print the version, the LibTorch version and the compute devices\n"
      "  --help        this text; 'repa-train COMMAND --help' describes a command\n\n"
      "Exit codes: 0 success, 1 failure while running, 2 bad input (arguments, config, files).\n");
}

void print_version() {
  std::printf("repa-train %s\nlibtorch %s\ncuda %s\nthreads %d\n", repa::kVersion, TORCH_VERSION,
              torch::cuda::is_available() ? "available" : "not available", torch::get_num_threads());
}

}  // namespace

int main(int argc, char** argv) {
  repa::models::install_ldm_single_file_converter();  // SD single files as pretrained_model_name_or_path
  int threads = 0;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      const char* text = argv[++i];
      char* end = nullptr;
      errno = 0;
      const long value = std::strtol(text, &end, 10);
      // 0 means every core; a negative count or trailing text is a typo, not a request.
      if (end == text || *end != '\0' || errno == ERANGE || value < 0 || value > 4096) {
        std::fprintf(stderr, "repa-train: --threads expects a whole number from 0 (every core) to 4096, got '%s'\n",
                     text);
        return 2;
      }
      threads = static_cast<int>(value);
    } else if (arg == "--help" || arg == "-h") {
      print_help();
      return 0;
    } else if (arg == "--version") {
      repa::configure_torch_threads(threads);
      print_version();
      return 0;
    } else {
      break;
    }
  }
  if (i >= argc) {
    print_help();
    return 2;
  }
  const std::string name = argv[i];
  for (const auto& command : repa::app::train_commands()) {
    if (name != command.name) continue;
    repa::configure_torch_threads(threads);
    repa::keep_freed_memory();
    repa::app::Args args(argv + i + 1, argv + argc);
    try {
      return command.run(args);
    } catch (const repa::InputError& e) {
      std::fprintf(stderr, "repa-train %s: %s\n", command.name, e.what());
      return 2;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "repa-train %s: out of memory (std::bad_alloc); lower train_batch_size or resolution\n",
                   command.name);
      return 1;
    } catch (const std::filesystem::filesystem_error& e) {
      std::fprintf(stderr, "repa-train %s: file system error: %s\n", command.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "repa-train %s: %s\n", command.name, e.what());
      return 1;
    } catch (...) {
      std::fprintf(stderr, "repa-train %s: failed with an unknown exception\n", command.name);
      return 1;
    }
  }
  std::fprintf(stderr, "repa-train: unknown command '%s' (see repa-train --help)\n", name.c_str());
  return 2;
}
