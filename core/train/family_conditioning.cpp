#include "core/train/family_conditioning.h"

#include <set>

#include "core/base/error.h"
#include "core/data/center_crop.h"
#include "core/data/image.h"
#include "core/train/caption_conditioning.h"
#include "core/train/config_values.h"
#include "core/train/demo_t2i_pipeline.h"

namespace repa::train {

std::optional<repa::config::FamilyPipeline> prepare_family_run(nlohmann::json& config) {
  if (!repa::config::is_pipeline_family(config)) return std::nullopt;
  ensure_demo_t2i_pipeline(config);
  auto pipeline = repa::config::resolve_family_pipeline(config);
  config = repa::config::with_family_settings(config, pipeline);
  return pipeline;
}

diffusion::Objective family_objective(const nlohmann::json& config, const repa::config::FamilyPipeline& pipeline) {
  const auto objective = diffusion::Objective::from_json(config);
  if (objective.is_flow()) return objective;
  return diffusion::Objective(
      objective.kind(), diffusion::VpSchedule::from_scheduler_config(
                            pipeline.scheduler,
                            pipeline.family == "sd2x" || flag_or(config, "rescale_betas_zero_snr", false)));
}

std::vector<std::pair<std::string, torch::Tensor>> prompt_table_tensors(const Conditioning& table) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, tensor] : {std::pair<std::string, torch::Tensor>{"text", table.text},
                                     {"pooled", table.pooled},
                                     {"mask", table.text_mask},
                                     {"time_ids", table.time_ids}})
    if (tensor.defined()) out.emplace_back(name, tensor.cpu().contiguous());
  return out;
}

Conditioning prompt_table_from(const std::map<std::string, torch::Tensor>& tensors) {
  auto get = [&](const char* name) {
    const auto it = tensors.find(name);
    return it == tensors.end() ? torch::Tensor() : it->second;
  };
  Conditioning table;
  table.text = get("text");
  table.pooled = get("pooled");
  table.text_mask = get("mask");
  table.time_ids = get("time_ids");
  return table;
}

std::vector<std::string> family_extra_prompts(const nlohmann::json& config,
                                              const std::vector<std::vector<std::string>>& captions) {
  auto prompts = validation_prompts(config, captions);
  prompts.push_back(validation_negative_prompt(config));
  return prompts;
}

torch::Tensor sdxl_time_ids(const data::ImageFolder& folder, int64_t resolution) {
  auto out = torch::empty({static_cast<int64_t>(folder.images.size()), 6}, torch::kFloat32);
  auto rows = out.accessor<float, 2>();
  for (std::size_t i = 0; i < folder.images.size(); ++i) {
    const auto [width, height] = data::read_image_size(folder.images[i].path);
    const auto g = data::adm_center_crop_geometry(width, height, static_cast<int>(resolution));
    const float values[6] = {static_cast<float>(g.resized_height), static_cast<float>(g.resized_width),
                             static_cast<float>(g.top),            static_cast<float>(g.left),
                             static_cast<float>(resolution),       static_cast<float>(resolution)};
    for (int k = 0; k < 6; ++k) rows[static_cast<int64_t>(i)][k] = values[k];
  }
  return out;
}

torch::Tensor sdxl_time_ids(const data::BucketedImages& images) {
  auto out = torch::empty({static_cast<int64_t>(images.geometry.size()), 6}, torch::kFloat32);
  auto rows = out.accessor<float, 2>();
  for (std::size_t i = 0; i < images.geometry.size(); ++i) {
    const auto ids = data::sdxl_time_ids(images.geometry[i]);
    for (int k = 0; k < 6; ++k) rows[static_cast<int64_t>(i)][k] = static_cast<float>(ids[static_cast<std::size_t>(k)]);
  }
  return out;
}

torch::Tensor default_time_ids(int64_t resolution, int64_t rows) {
  const float r = static_cast<float>(resolution);
  return torch::tensor({r, r, 0.0f, 0.0f, r, r}).unsqueeze(0).repeat({rows, 1});
}

Conditioning to_conditioning(const text::TextEmbedding& embedding) {
  Conditioning c;
  auto get = [&](const char* key) {
    const auto it = embedding.find(key);
    return it == embedding.end() ? torch::Tensor() : it->second;
  };
  c.text = get("hidden");
  c.pooled = get("pooled");
  c.text_mask = get("mask");
  return c;
}

std::vector<std::string> validation_prompts(const nlohmann::json& config,
                                            const std::vector<std::vector<std::string>>& captions) {
  std::vector<std::string> prompts;
  auto take = [&](const nlohmann::json& value, const std::string& key) {
    if (value.is_null()) return;
    if (value.is_string()) {
      if (!value.get<std::string>().empty()) prompts.push_back(value.get<std::string>());
      return;
    }
    if (value.is_array()) {
      for (const auto& item : value) {
        if (!item.is_string()) throw InputError(key + " must hold prompts (strings)");
        prompts.push_back(item.get<std::string>());
      }
      return;
    }
    throw InputError(key + " must be a prompt or a list of prompts");
  };
  if (config.contains("validation_prompt")) take(config.at("validation_prompt"), "validation_prompt");
  const auto& studio = studio_settings(config);
  if (studio.contains("validation_prompts")) take(studio.at("validation_prompts"), "studio.validation_prompts");
  if (!prompts.empty()) return prompts;
  std::set<std::string> seen;
  for (const auto& image : captions) {
    if (image.empty() || image.front().empty() || !seen.insert(image.front()).second) continue;
    prompts.push_back(image.front());
    if (prompts.size() == 4) break;
  }
  if (prompts.empty()) prompts.push_back("");
  return prompts;
}

std::string validation_negative_prompt(const nlohmann::json& config) {
  const auto it = config.find("validation_negative_prompt");
  if (it == config.end() || it->is_null()) return "blurry, cropped, ugly";
  if (!it->is_string()) throw InputError("validation_negative_prompt must be a string");
  return it->get<std::string>();
}

Conditioning prompt_table(const CaptionConditioning& captions, const std::vector<std::string>& prompts,
                          const std::string& negative, int64_t resolution, bool with_time_ids) {
  auto rows = prompts;
  rows.push_back(negative);
  Conditioning table = to_conditioning(captions.embeddings(rows));
  if (with_time_ids) table.time_ids = default_time_ids(resolution, static_cast<int64_t>(rows.size()));
  return table;
}

}  // namespace repa::train
