// The two token grids REPA / U-REPA align: the teacher's (DINOv2 /14 patches of its input image) and the
// backbone's (a SiT's patches of the latent or pixel image, a UNet's mid block). When they differ the aligner
// resamples the larger grid to the smaller one (bilinear, no antialias), so a 37×37 DINOv2 grid at 518 px
// is squeezed onto a 16×16 SiT grid; REPA itself feeds 224 px, 16×16 on 16×16. validate() warns about a
// mismatch and names the encoder size that removes it. No LibTorch: it reads the resolved config and the
// VAE's and UNet's config.json where those decide the backbone's grid.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/config/registry.h"

namespace repa::config {

inline constexpr int64_t kDinov2PatchSize = 14;

struct AlignmentGrids {
  int64_t teacher = 0;              // teacher tokens per side
  int64_t backbone = 0;             // backbone tokens per side
  std::string teacher_origin;       // "dinov2_vitg14 at 518 px / 14"
  std::string backbone_origin;      // "256 px / 8 (VAE) / patch 2"
  std::string size_key;             // crepa_encoder_image_size, or urepa_encoder_image_size for U-REPA
  bool repa_preprocessing = false;  // studio.encoder_preprocessing "repa": the size follows the resolution
  bool pooled = false;              // crepa_spatial_align false: unequal counts are mean-pooled to one token
  bool pixel_space = false;         // no VAE (studio.vae_path empty)
  // The encoder input side that gives the backbone's grid: backbone × 14.
  int64_t matching_encoder_size() const { return backbone * kDinov2PatchSize; }
};

// Both grids of a resolved config, or nullopt when there is nothing to compare: no alignment, CLS teacher
// tokens, a model_family (a backbone the studio does not build), a TorchScript teacher, or a size that cannot
// be worked out (an unreadable UNet config, REPA preprocessing below 256 px).
std::optional<AlignmentGrids> alignment_grids(const nlohmann::json& resolved_config);

// A warning when the grids differ, naming both and the encoder size that would make them equal.
std::vector<Problem> check_alignment_grid(const nlohmann::json& resolved_config);

}  // namespace repa::config
