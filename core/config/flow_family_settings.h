// The run settings SimpleTuner's check_user_config fixes for the flow-matching families trained from a pipeline
// folder (sd3, flux, chroma): the T5 token limit (SD3 154 at most; Flux 512 dev / 256 schnell, whatever the user
// set; Chroma 512 unless set), the Flux flavour read from transformer/config.json's guidance_embeds, and the
// option values the studio refuses by name (an unknown flux_guidance_mode, schnell without flux_fast_schedule,
// SD3's "zero" unconditional behaviours, t5_padding "zero").
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/config/family_pipeline.h"

namespace repa::config {

// The Flux flavour of a transformer folder: "dev" when its config.json has guidance_embeds true, else "schnell".
std::string flux_flavour(const std::string& transformer_folder);

// config.json of a transformer/ folder; InputError naming the file when missing or not an object.
nlohmann::json transformer_config(const std::string& transformer_folder);

// "" when the folder's _class_name fits the family (or is absent), otherwise the message naming both.
std::string transformer_class_problem(const std::string& transformer_folder, const std::string& family);

// "" when model_index.json's _class_name in the pipeline folder fits the family (or the file or the key is absent),
// otherwise the message naming both: what the window shows before Start for a folder of another family.
std::string pipeline_class_problem(const std::string& folder, const std::string& family);

// `config` with the family's rules applied (tokenizer_max_length written); InputError naming the key for refused
// values. Other families pass through unchanged.
nlohmann::json with_flow_family_rules(const nlohmann::json& config, const FamilyPipeline& pipeline);

}  // namespace repa::config
