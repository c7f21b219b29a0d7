#include "core/train/family_backbones.h"

#include <map>

#include "core/base/error.h"
#include "core/train/backbone_flow_families.h"
#include "core/train/backbone_pixart.h"

namespace repa::train {

BackboneOutput TextBackbone::forward(const torch::Tensor& x, const torch::Tensor& model_time,
                                     const torch::Tensor& labels, bool tap) {
  if (!prompts_.text.defined())
    throw InputError("a text-conditioned backbone samples from prompts: the run sets its prompt table first");
  return forward_conditioned(x, model_time, prompts_.rows(labels.to(torch::kLong)), tap);
}

namespace {

const std::map<std::string, FamilyBackboneFactory>& factories() {
  static const std::map<std::string, FamilyBackboneFactory> table = {
      {"sd1x", make_sd_unet_backbone},
      {"sd2x", make_sd_unet_backbone},
      {"sdxl", make_sd_unet_backbone},
      {"sd3", make_sd3_backbone},
      {"flux", make_flux_backbone},
      {"chroma", make_chroma_backbone},
      {"pixart", make_pixart_backbone},
  };
  return table;
}

}  // namespace

std::unique_ptr<Backbone> make_family_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                               const BackboneShape& shape) {
  const auto it = factories().find(pipeline.family);
  if (it == factories().end())
    throw InputError("model_family '" + pipeline.family + "' has no backbone in the studio's worker");
  return it->second(config, pipeline, shape);
}

}  // namespace repa::train
