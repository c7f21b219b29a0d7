// repa-train sample CHECKPOINT [--out FILE.png] [--steps N] [--guidance G] [--sampler S] [--seed N]: a sample
// grid from a saved checkpoint (its EMA weights when it has them), with the run's fixed seeds and classes.
#include <cstdio>
#include <string>

#include "app/train_commands.h"
#include "core/base/error.h"
#include "core/train/sample_grid.h"

namespace repa::app {

int sample_command(const Args& args) {
  std::string checkpoint, out;
  nlohmann::json overrides = nlohmann::json::object();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::printf("Usage: repa-train sample CHECKPOINT_DIR [--out FILE.png] [--steps N] [--guidance G]\n"
                  "                         [--sampler euler|euler_maruyama|ddim] [--seed N]\n\n"
                  "Draws the run's sample grid (fixed seeds and classes) from a checkpoint folder, with its EMA\n"
                  "weights when present. Default output: CHECKPOINT_DIR/sample-step-<step>.png.\n");
      return 0;
    }
    const bool has_value = i + 1 < args.size();
    auto number = [&](const std::string& text) {
      try {
        return std::stod(text);
      } catch (const std::exception&) {
        throw InputError(a + " expects a number, got '" + text + "'");
      }
    };
    if (a == "--out" && has_value) {
      out = args[++i];
    } else if (a == "--steps" && has_value) {
      overrides["validation_num_inference_steps"] = static_cast<int64_t>(number(args[++i]));
    } else if (a == "--guidance" && has_value) {
      overrides["validation_guidance"] = number(args[++i]);
    } else if (a == "--seed" && has_value) {
      overrides["seed"] = static_cast<int64_t>(number(args[++i]));
    } else if (a == "--sampler" && has_value) {
      overrides["studio.sampler"] = args[++i];
    } else if (a.rfind("--", 0) == 0) {
      throw InputError("unknown or incomplete option '" + a + "' (see repa-train sample --help)");
    } else if (checkpoint.empty()) {
      checkpoint = a;
    } else {
      throw InputError("one checkpoint folder expected, got a second: '" + a + "'");
    }
  }
  if (checkpoint.empty()) throw InputError("name a checkpoint folder (runs/NAME/checkpoints/checkpoint-STEP)");
  std::printf("%s\n", train::sample_checkpoint(checkpoint, out, overrides).c_str());
  return 0;
}

}  // namespace repa::app
