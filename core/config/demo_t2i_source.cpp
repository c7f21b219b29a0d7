#include "core/config/demo_t2i_source.h"

#include <filesystem>

namespace repa::config {

bool uses_demo_t2i_pipeline(const nlohmann::json& config) {
  const auto it = config.find("pretrained_model_name_or_path");
  return it != config.end() && it->is_string() && it->get<std::string>() == kDemoT2iPipelineName;
}

std::string demo_t2i_pipeline_folder(const nlohmann::json& config) {
  const auto it = config.find("output_dir");
  const std::string output = it != config.end() && it->is_string() && !it->get<std::string>().empty()
                                 ? it->get<std::string>()
                                 : std::string("runs");
  return (std::filesystem::path(output) / "demo-t2i-pipeline").string();
}

}  // namespace repa::config
