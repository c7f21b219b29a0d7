// The original AuraFlow checkpoint names (fal's single-file releases, also under ComfyUI's "model.diffusion_model."
// prefix) mapped onto diffusers' AuraFlowTransformer2DModel names, as diffusers' single-file loader maps them
// (double_layers / single_layers, w1*/w2* attention projections, mlpX/mlpC/modX/modC/modCX, and modF's
// [shift; scale] rows swapped into norm_out's [scale; shift]).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/models/auraflow_transformer.h"

namespace repa::models {

bool has_original_auraflow_names(const std::vector<std::string>& names);  // init_x_linear.weight, any prefix

// Original names → diffusers names; unknown names are kept, so loading names them as unexpected.
std::map<std::string, torch::Tensor> auraflow_original_to_diffusers(
    const std::map<std::string, torch::Tensor>& original);

// Loads a diffusers folder or file, or a single safetensors file under the original names; every missing,
// unexpected and mis-shaped tensor is named in one InputError with the file.
void load_auraflow_weights(AuraFlowTransformer& model, const std::string& path);

}  // namespace repa::models
