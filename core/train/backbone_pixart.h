// PixArt-Σ (and PixArt-α) denoiser for the family runs: the pipeline's transformer/ (diffusers'
// PixArtTransformer2DModel, or a single file under the official names), trained as SimpleTuner trains it.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "core/train/family_backbones.h"

namespace repa::train {

// The T5 states reach the transformer with their attention mask (encoder_attention_mask); with a learned-sigma
// head (out_channels = 2·in_channels) only the first half, the noise prediction, is returned: SimpleTuner's
// chunk(2, dim=1)[0], the variance half takes no loss. resolution / aspect_ratio (use_additional_conditions) are the
// batch's pixel height and width and their ratio. REPA taps transformer_blocks[crepa_block_index].
std::unique_ptr<Backbone> make_pixart_backbone(const nlohmann::json& config, const FamilyPipeline& pipeline,
                                               const BackboneShape& shape);

}  // namespace repa::train
