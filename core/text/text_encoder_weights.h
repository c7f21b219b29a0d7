// Finding and opening the weights of a Hugging Face text encoder folder (text_encoder*/ of a diffusers
// pipeline): model.safetensors, its sharded index, or the fp16 variants of either.
#pragma once
#include <torch/torch.h>

#include <string>

namespace repa::text {

// InputError naming the folder when it holds no safetensors weights (and saying so when only a .bin does).
std::string find_text_encoder_weights(const std::string& folder);

// The largest value of `dtype`, negated: what transformers adds to masked attention scores (finfo.min).
double lowest_value(torch::Dtype dtype);

}  // namespace repa::text
