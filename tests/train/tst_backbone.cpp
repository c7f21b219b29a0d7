// The backbone factory carries the run config's precision into the models: mixed_precision "bf16" asks
// for a bf16 autocast region (taken on CUDA only), anything else for none.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/models/sit.h"
#include "core/models/unet_2d.h"
#include "core/train/backbone.h"

using namespace repa;

namespace {

nlohmann::json run_config(const std::string& architecture, const std::string& precision) {
  return {{"mixed_precision", precision},
          {"urepa_enabled", architecture == "unet2d"},
          {"studio",
           {{"architecture", architecture}, {"unet_config", "tiny"}, {"sit_size", "custom"}, {"patch_size", 4},
            {"depth", 2}, {"hidden_size", 32}, {"num_heads", 2}}}};
}

}  // namespace

TEST_CASE("mixed_precision bf16 reaches the UNet's memory options, and 'no' leaves autocast off") {
  const train::BackboneShape shape{32, 3, 4};
  for (const std::string precision : {"bf16", "no"}) {
    INFO(precision);
    auto backbone = train::make_backbone(run_config("unet2d", precision), shape);
    auto* unet = dynamic_cast<models::UNet2DModelImpl*>(&backbone->module());
    REQUIRE(unet != nullptr);
    CHECK(unet->memory_options().autocast_bf16 == (precision == "bf16"));
  }
}

TEST_CASE("mixed_precision bf16 reaches the SiT's config") {
  const train::BackboneShape shape{32, 3, 4};
  for (const std::string precision : {"bf16", "no"}) {
    INFO(precision);
    auto backbone = train::make_backbone(run_config("sit", precision), shape);
    auto* sit = dynamic_cast<models::SiTImpl*>(&backbone->module());
    REQUIRE(sit != nullptr);
    CHECK(sit->config.bf16_autocast == (precision == "bf16"));
  }
}
