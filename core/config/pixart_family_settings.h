// The run settings SimpleTuner's PixartSigma.check_user_config fixes for model_family "pixart": the T5 keeps 300
// tokens whatever tokenizer_max_length says, and max_grad_norm unset or above 0.01 becomes 0.01 unless
// i_know_what_i_am_doing (an unset one even then), as SimpleTuner overrides them.
#pragma once
#include <nlohmann/json.hpp>

#include "core/config/family_pipeline.h"

namespace repa::config {

// `config` with the rules applied for a pixart pipeline; other families pass through unchanged.
nlohmann::json with_pixart_family_rules(const nlohmann::json& config, const FamilyPipeline& pipeline);

}  // namespace repa::config
