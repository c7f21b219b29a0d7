// pretrained_model_name_or_path "@demo-t2i": the text-to-image demo's tiny pipeline (random SD-shaped UNet, CLIP
// and VAE, a generated tokenizer), made under <output_dir>/demo-t2i-pipeline when a run starts, so the demo
// needs nothing downloaded.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace repa::config {

inline constexpr const char* kDemoT2iPipelineName = "@demo-t2i";

// True when the config's pretrained_model_name_or_path is "@demo-t2i".
bool uses_demo_t2i_pipeline(const nlohmann::json& config);

// <output_dir>/demo-t2i-pipeline (output_dir "runs" when unset).
std::string demo_t2i_pipeline_folder(const nlohmann::json& config);

}  // namespace repa::config
