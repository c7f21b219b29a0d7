#include "core/models/official_single_file.h"

#include <set>

#include "core/base/error.h"
#include "core/models/flux_official_names.h"
#include "core/models/official_names.h"
#include "core/models/pixart_official_names.h"
#include "core/models/sd3_official_names.h"

namespace repa::models {

namespace {

struct WritableFamily {
  const char* family;
  const char* label;  // as the read tables name the file kind in messages
  NameTable (*table)(const NameShape&);
};

// The families with a single-file writer: their read tables, applied backwards.
const std::vector<WritableFamily>& writable_families() {
  static const std::vector<WritableFamily> families = {{"flux", "Flux", flux_name_table},
                                                       {"chroma", "Chroma", chroma_name_table},
                                                       {"flux2", "Flux.2", flux2_name_table},
                                                       {"sd3", "SD3", sd3_name_table},
                                                       {"pixart", "PixArt", pixart_name_table}};
  return families;
}

}  // namespace

std::string official_single_file_family(const std::vector<std::string>& names) {
  const std::set<std::string> n(names.begin(), names.end());
  if (n.count("double_stream_modulation_img.linear.weight")) return "flux2";
  if (n.count("distilled_guidance_layer.in_proj.weight")) return "chroma";
  if (n.count("pos_embed.proj.weight") && n.count("transformer_blocks.0.norm1_context.linear.weight")) return "sd3";
  if (n.count("pos_embed.proj.weight") && n.count("adaln_single.linear.weight")) return "pixart";
  if (n.count("time_text_embed.text_embedder.linear_1.weight") && n.count("x_embedder.weight") &&
      (n.count("single_transformer_blocks.0.proj_mlp.weight") ||
       n.count("transformer_blocks.0.norm1_context.linear.weight")))
    return "flux";
  return "";
}

std::string unwritten_single_file_family(const std::vector<std::string>& names) {
  const std::set<std::string> n(names.begin(), names.end());
  if (n.count("patch_embed.proj.weight") && n.count("time_embed.linear.weight")) return "Sana";
  if (n.count("register_tokens") && n.count("time_step_proj.linear_1.weight")) return "AuraFlow";
  return "";
}

std::map<std::string, torch::Tensor> diffusers_to_official(const std::string& family,
                                                           const std::map<std::string, torch::Tensor>& tensors,
                                                           const std::string& origin) {
  for (const auto& f : writable_families())
    if (family == f.family)
      return apply_diffusers_to_official(f.table(NameShape(tensors, /*official=*/false)), tensors, f.label, origin);
  throw InputError(origin + ": no official single-file table to write for family '" + family +
                   "' (flux, chroma, flux2, sd3 and pixart have one)");
}

}  // namespace repa::models
