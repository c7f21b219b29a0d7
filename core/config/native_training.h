// Which configs the studio's own worker can train. A config it cannot train (a SimpleTuner model family:
// text encoders and family backbones are SimpleTuner's side for now) is exported for SimpleTuner instead;
// the worker refuses it with this message (exit code 2) and the window disables Start with it.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace repa::config {

// Why the worker cannot train `config` natively, naming the key and the way forward; "" when it can.
std::string native_training_blocker(const nlohmann::json& config);

}  // namespace repa::config
