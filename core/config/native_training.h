// Which configs the studio's own worker can train. The studio trains the from-scratch SiT/UNet setups and the
// text-to-image families whose text encoders and autoencoder it has (natively_trained_families()); a family
// whose encoder is still missing is refused with a message naming that encoder, and can be exported for
// SimpleTuner. The worker stops with the message (exit code 2) and the window disables Start with it.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::config {

// Why the worker cannot train `config` natively, naming the key and the way forward; "" when it can.
std::string native_training_blocker(const nlohmann::json& config);

// The model_family values the worker trains from a diffusers pipeline folder.
const std::vector<std::string>& natively_trained_families();

// What a family still lacks in the studio (its text encoder or autoencoder), "" when nothing is missing.
std::string missing_family_components(const std::string& family);

}  // namespace repa::config
