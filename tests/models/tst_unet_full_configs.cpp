// The full SD 1.5 and SDXL UNets built from their diffusers config.json (no weights): parameter counts and
// tensor counts as in the released checkpoints, and the mid-block shape U-REPA taps at 512 and 1024 px.
// Parameters are created uninitialised, so the 2.6 B-parameter SDXL UNet reserves address space but
// touches no memory.
#include <doctest/doctest.h>

#include "core/models/diffusers_config.h"
#include "core/models/diffusers_layers.h"
#include "core/models/unet_2d_condition.h"
#include "tests/test_support.h"

using namespace repa::models;

namespace {

UNet2DConditionModel build_uninitialized(const std::string& config_file) {
  diffusers::ParameterInitScope no_init(diffusers::ParameterInit::Uninitialized);
  const auto config = diffusers::read_config_file(repa::test::source_path("tests/models/data/" + config_file));
  return UNet2DConditionModel(UNet2DConditionConfig::from_json(config));
}

}  // namespace

TEST_CASE("SD 1.5 UNet: 859,520,964 parameters in 686 tensors, mid block 1280x8x8 at 512 px") {
  auto unet = build_uninitialized("sd15_unet_config.json");
  CHECK(unet->num_parameters() == 859520964);
  CHECK(unet->named_parameters().size() == 686);
  // Names as in the checkpoint, e.g. the second transformer of the third down block.
  CHECK(unet->named_parameters().contains("down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight"));
  CHECK((unet->named_parameters()["down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight"].sizes() ==
         torch::IntArrayRef{1280, 768}));
  CHECK((unet->mid_block_shape(2, 64, 64) == std::vector<int64_t>{2, 1280, 8, 8}));
}

TEST_CASE("SDXL UNet: 2,567,463,684 parameters in 1680 tensors, mid block 1280x32x32 at 1024 px") {
  auto unet = build_uninitialized("sdxl_unet_config.json");
  CHECK(unet->num_parameters() == 2567463684);
  CHECK(unet->named_parameters().size() == 1680);
  CHECK(unet->named_parameters().contains("mid_block.attentions.0.transformer_blocks.9.ff.net.2.weight"));
  CHECK((unet->named_parameters()["add_embedding.linear_1.weight"].sizes() == torch::IntArrayRef{1280, 2816}));
  CHECK((unet->mid_block_shape(1, 128, 128) == std::vector<int64_t>{1, 1280, 32, 32}));
}
