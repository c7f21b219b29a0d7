#include "core/train/sample_grid.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/base/generator_scope.h"
#include "core/data/image.h"
#include "core/encoders/hub_repo.h"
#include "core/data/image_tensor.h"
#include "core/train/backbone_flow_families.h"
#include "core/train/checkpoint.h"
#include "core/train/config_values.h"
#include "core/train/ema.h"
#include "core/train/family_conditioning.h"
#include "core/train/lora_training.h"

namespace repa::train {

SampleGrid draw_sample_grid(Backbone& backbone, LatentSpace& latent_space, const diffusion::Objective& objective,
                            const nlohmann::json& config, int64_t num_classes, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  GeneratorScope keep_training_stream;
  const int64_t count = num_classes > 0 ? std::min<int64_t>(16, std::max<int64_t>(8, 2 * num_classes)) : 8;
  // validation_seed, when set, fixes the starting noise by itself (as SimpleTuner seeds its validation images).
  const auto validation_seed = config.find("validation_seed");
  torch::manual_seed(validation_seed != config.end() && validation_seed->is_number_integer()
                         ? validation_seed->get<uint64_t>()
                         : static_cast<uint64_t>(integer_or(config, "seed", 0)) + 20240);
  const int64_t side = integer_or(config, "resolution", 256) / latent_space.downsampling();
  const auto noise = torch::randn({count, latent_space.channels(), side, side}).to(device);
  SampleGrid grid;
  for (int64_t k = 0; k < count; ++k) grid.labels.push_back(num_classes > 0 ? k % num_classes : backbone.null_label());
  const auto labels = torch::tensor(grid.labels, torch::kInt64).to(device);
  grid.sampler = diffusion::SamplerConfig::from_json(config, num_classes);
  grid.sampler.null_label = backbone.null_label();
  grid.sampler.euler_grid = family_sampling_sigmas(config, side, side, grid.sampler.num_steps);
  if (num_classes == 0) grid.sampler.guidance_scale = 1.0;  // nothing to guide toward
  diffusion::DenoiserFn denoise = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) {
    return backbone.forward(x, t, y, false).prediction;
  };
  const auto samples = diffusion::sample(denoise, objective, grid.sampler, noise, labels).to(torch::kFloat32);
  grid.pixels = latent_space.to_pixels(samples).cpu();
  return grid;
}

void write_sample_grid(const SampleGrid& grid, const std::string& path) {
  data::write_png(path, data::tensor_grid_to_image(grid.pixels, 8));
}

std::string sample_checkpoint(const std::string& checkpoint_dir, const std::string& out_path,
                              const nlohmann::json& overrides) {
  const auto state = read_checkpoint_state(checkpoint_dir);
  nlohmann::json config = state.at("config");
  for (const auto& [key, value] : overrides.items()) {
    if (key.rfind("studio.", 0) == 0)
      config["studio"][key.substr(7)] = value;
    else
      config[key] = value;
  }
  const torch::Device device = torch::cuda::is_available() && text_or(studio_settings(config), "device", "auto") != "cpu"
                                   ? torch::Device(torch::kCUDA)
                                   : torch::Device(torch::kCPU);
  LatentSpace latent_space(config, device);
  BackboneShape shape;
  shape.input_size = integer_or(config, "resolution", 256) / latent_space.downsampling();
  shape.in_channels = latent_space.channels();
  shape.num_classes = state.value("num_classes", int64_t{0});
  // A family run's checkpoint holds its samples' prompt states: the text encoders are not needed here.
  const bool family = state.contains("sample_prompts");
  Conditioning prompts;
  std::optional<repa::config::FamilyPipeline> pipeline;
  if (family) {
    const auto file = open_checkpoint_part(checkpoint_dir, "prompts");
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& name : file.names()) tensors[name] = file.tensor(name);
    prompts = prompt_table_from(tensors);
    if (!prompts.text.defined()) throw InputError("checkpoint " + checkpoint_dir + ": prompts.safetensors has no text");
    shape.text_width = prompts.text.size(-1);
    shape.num_classes = 0;
    pipeline = repa::config::resolve_family_pipeline(config);
  }
  auto backbone = make_backbone(config, shape);
  if (family) backbone->set_prompt_table(prompts);
  // A LoRA checkpoint holds the adapters only: the base comes from where the run took it.
  std::unique_ptr<LoraTraining> lora;
  if (state.contains("lora")) {
    // A Hub repo id names the folder `repa-train fetch` filled; an unfetched one says the command.
    const std::string pretrained = encoders::resolve_model_source(
        text_or(config, "pretrained_model_name_or_path", ""), "pretrained_model_name_or_path",
        text_or(config, "model_family", ""));
    if (!pretrained.empty() && !family) backbone->load_weights(pretrained);  // a family's loads with its pipeline
    backbone->module().to(device);  // the adapters are made where the base weights are
    const std::string architecture = text_or(studio_settings(config), "architecture", "sit");
    lora = LoraTraining::from_config(config, backbone->module(), architecture);
    if (!lora) {
      throw InputError("checkpoint " + checkpoint_dir + " holds LoRA adapters but its config has no model_type lora");
    }
    lora->check_base_fingerprint(state.at("lora").at("base_fingerprint").get<double>(), checkpoint_dir);
    lora->load_state(open_checkpoint_part(checkpoint_dir, "lora"));
    if (std::filesystem::exists(checkpoint_dir + "/ema.safetensors"))
      load_module_state(lora->module(), open_checkpoint_part(checkpoint_dir, "ema"));
  } else {
    const bool has_ema = std::filesystem::exists(checkpoint_dir + "/ema.safetensors");
    load_module_state(backbone->module(), open_checkpoint_part(checkpoint_dir, has_ema ? "ema" : "model"));
  }
  backbone->module().to(device);
  backbone->module().eval();
  const auto objective = family ? family_objective(config, *pipeline) : diffusion::Objective::from_json(config);
  const int64_t rows = family ? static_cast<int64_t>(state.at("sample_prompts").size()) : shape.num_classes;
  const auto grid = draw_sample_grid(*backbone, latent_space, objective, config, rows, device);
  const std::string path =
      out_path.empty() ? checkpoint_dir + "/sample-step-" + std::to_string(state.value("step", int64_t{0})) + ".png"
                       : out_path;
  write_sample_grid(grid, path);
  return path;
}

}  // namespace repa::train
