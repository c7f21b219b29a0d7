// The studio's own settings, kept under the nested "studio" object of a run config. SimpleTuner does not
// know them; an export for SimpleTuner drops them and says so.
#include "core/config/option_builder.h"

namespace repa::config::detail {
namespace {

using T = OptionType;

// The studio's own backbones (SiT, UNet) train when no model family is chosen; a family's spec names its own
// backbone, so these settings would only mislead next to it.
nlohmann::json no_family() {
  return nlohmann::json::array({nullptr, ""});
}

Declare studio(const char* name, OptionType type, nlohmann::json default_value, const char* section, double order,
               const char* label) {
  return Declare(std::string("studio.") + name, type, std::move(default_value))
      .at("studio", section, "", order)
      .label(label)
      .studio_only();
}

}  // namespace

std::vector<OptionSpec> studio_options() {
  return {
      // Dataset
      studio("dataset_dir", T::Path, "", "dataset", 1, "Dataset Folder")
          .help("Folder of training images; one sub-folder per class when the images are class-labelled."),
      studio("class_labels", T::Bool, true, "dataset", 2, "Class Labels From Sub-folders")
          .help("Condition on the class given by each image's sub-folder (off: unconditional)."),
      studio("num_classes", T::Int, 0, "dataset", 3, "Number of Classes")
          .min(0)
          .show_if("studio.class_labels", "equals", true)
          .help("Size of the class embedding table (0: count the dataset's sub-folders)."),
      studio("random_flip", T::Bool, false, "dataset", 4, "Random Horizontal Flip")
          .help("Flip images at random; the encoder's tokens are then computed per step instead of cached."),
      studio("cache_dir", T::Path, "", "dataset", 5, "Cache Folder")
          .help("Where VAE latents and encoder tokens are cached (empty: beside the dataset)."),
      studio("num_workers", T::Int, 2, "dataset", 6, "Data Loader Workers")
          .min(0)
          .help("Threads that decode and crop images ahead of the trainer."),
      studio("caption_prefix", T::String, "", "dataset", 7, "Caption Prefix")
          .show_if("studio.architecture", "equals", "unet2d_condition")
          .help("Text put before every caption of a text-conditioned run (e.g. a trigger word and a space)."),
      // Architecture
      studio("architecture", T::Choice, "sit", "architecture", 1, "Backbone")
          .choices({"sit", "unet2d", "unet2d_condition"})
          .show_if("model_family", "in", no_family())
          .help("Network trained by the studio: a SiT transformer (REPA) or a diffusers UNet (U-REPA)."),
      studio("sit_size", T::Choice, "B", "architecture", 2, "SiT Size")
          .choices({"S", "B", "L", "XL", "custom"})
          .show_if("studio.architecture", "equals", "sit")
          .show_if("model_family", "in", no_family())
          .help("SiT-S/B/L/XL as in the SiT and REPA papers, or custom depth and width."),
      studio("patch_size", T::Int, 2, "architecture", 3, "Patch Size")
          .min(1)
          .show_if("studio.architecture", "equals", "sit")
          .show_if("model_family", "in", no_family())
          .help("Side of the square patches the transformer turns into tokens (the /2 in SiT-XL/2)."),
      studio("depth", T::Int, 12, "architecture", 4, "Depth")
          .min(1)
          .show_if("studio.architecture", "equals", "sit")
          .show_if("studio.sit_size", "equals", "custom")
          .show_if("model_family", "in", no_family())
          .help("Number of transformer blocks of a custom SiT (SiT-B has 12, SiT-XL 28)."),
      studio("hidden_size", T::Int, 768, "architecture", 5, "Hidden Size")
          .min(1)
          .show_if("studio.architecture", "equals", "sit")
          .show_if("studio.sit_size", "equals", "custom")
          .show_if("model_family", "in", no_family())
          .help("Width of the transformer's tokens; a multiple of the number of heads."),
      studio("num_heads", T::Int, 12, "architecture", 6, "Attention Heads")
          .min(1)
          .show_if("studio.architecture", "equals", "sit")
          .show_if("studio.sit_size", "equals", "custom")
          .show_if("model_family", "in", no_family())
          .help("Attention heads per block of a custom SiT; the hidden size must divide by it."),
      studio("mlp_ratio", T::Float, 4.0, "architecture", 7, "MLP Ratio")
          .min(0.0)
          .show_if("studio.architecture", "equals", "sit")
          .show_if("studio.sit_size", "equals", "custom")
          .show_if("model_family", "in", no_family())
          .help("Width of each block's MLP relative to the hidden size."),
      studio("class_dropout_prob", T::Float, 0.1, "architecture", 8, "Class Dropout")
          .min(0.0)
          .max(1.0)
          .show_if("studio.class_labels", "equals", true)
          .help("Chance of replacing the class with the null class, which enables classifier-free guidance."),
      studio("unet_config", T::String, "", "architecture", 9, "UNet Config")
          .show_if("studio.architecture", "not_equals", "sit")
          .show_if("model_family", "in", no_family())
          .help("A diffusers UNet config.json, or the name of a built-in UNet configuration."),
      studio("vae_path", T::Path, "", "architecture", 10, "VAE Weights")
          .help("AutoencoderKL weights to train in latent space (empty: train on pixels)."),
      studio("latent_scaling_factor", T::Float, 0.18215, "architecture", 11, "Latent Scaling Factor")
          .show_if("studio.vae_path", "not_equals", "")
          .help("Multiplier applied to VAE latents (0.18215 for the SD VAE)."),
      studio("latent_shift_factor", T::Float, 0.0, "architecture", 12, "Latent Shift Factor")
          .show_if("studio.vae_path", "not_equals", "")
          .help("Offset subtracted from VAE latents before scaling."),
      studio("text_encoder_path", T::Path, "", "architecture", 13, "Text Encoders Folder")
          .show_if("studio.architecture", "equals", "unet2d_condition")
          .help("Folder holding the text_encoder*/ and tokenizer*/ folders (a diffusers pipeline) whose "
                "embeddings of the captions condition a unet2d_condition run."),
      studio("text_conditioning", T::Choice, "sd1x", "architecture", 14, "Text Conditioning")
          .choices({"sd1x", "sd2x", "sdxl", "sd3", "flux", "pixart"})
          .show_if("studio.architecture", "equals", "unet2d_condition")
          .help("Which text encoders, hidden state, token limit and pooled output a family uses "
                "(docs/text-conditioning.md)."),
      // Encoder and alignment
      studio("encoder_weights", T::Path, "", "encoder", 1, "Encoder Weights")
          .help("Vision-encoder weights file (empty: look in the weights cache, see repa-train fetch)."),
      studio("encoder_random_init", T::Bool, false, "encoder", 2, "Random Encoder (Demo Only)")
          .help(
              "Use a randomly initialised encoder so the demo runs without downloads; alignment is then meaningless."),
      studio("encoder_preprocessing", T::Choice, "simpletuner", "encoder", 3, "Encoder Preprocessing")
          .choices({"simpletuner", "repa"})
          .help("Resize and normalise images for the encoder as SimpleTuner does, or as the REPA code does."),
      studio("teacher_tokens", T::Choice, "patch", "encoder", 4, "Teacher Tokens")
          .choices({"patch", "cls"})
          .help("Align with the encoder's patch tokens (the papers) or its CLS token (SimpleTuner's behaviour)."),
      studio("teacher_input", T::Choice, "pixels", "encoder", 4.5, "Teacher Input")
          .choices({"pixels", "vae_decode"})
          .help("What the encoder sees: the dataset's pixels (REPA's way), or the clean latents decoded by the "
                "VAE and clamped to [0, 1] (SimpleTuner's way; needs a latent space run, studio.vae_path)."),
      studio("projector", T::Choice, "layernorm_linear", "encoder", 5, "Projector")
          .choices({"layernorm_linear", "mlp", "conv"})
          .help("Head that maps the backbone's features to the encoder's width."),
      studio("projector_hidden_dim", T::Int, 2048, "encoder", 6, "Projector Hidden Size")
          .min(1)
          .show_if("studio.projector", "equals", "mlp")
          .help("Width of the MLP projector's hidden layers (2048 in the REPA paper)."),
      studio("manifold_reduction", T::Choice, "per_image", "encoder", 7, "Manifold Loss Reduction")
          .choices({"per_image", "across_batch"})
          .help("Compare token similarity structure within each image, or across the whole batch."),
      // Diffusion
      studio("objective", T::Choice, "linear", "diffusion", 1, "Objective")
          .choices({"linear", "cosine", "vp_epsilon", "vp_v"})
          .help("Noise path and target: linear or cosine interpolant with velocity target, or VP with eps or v."),
      studio("timestep_sampling", T::Choice, "uniform", "diffusion", 2, "Timestep Sampling")
          .choices({"uniform", "logit_normal"})
          .help("Distribution of training timesteps: uniform, or logit-normal, which favours the middle of the "
                "noise range."),
      // Sampling
      studio("sampler", T::Choice, "euler", "sampling", 1, "Sampler")
          .choices({"euler", "euler_maruyama", "ddim", "dpmpp_2m_karras"})
          .help("Solver used for validation samples: Euler (ODE) or Euler–Maruyama (SDE, as in the SiT paper) for "
                "flow objectives; DDIM or DPM++ 2M Karras for the VP (epsilon, v) objectives."),
      studio("guidance_interval_low", T::Float, 0.0, "sampling", 2, "Guidance Interval Start")
          .min(0.0)
          .max(1.0)
          .help("Apply guidance only for times above this value."),
      studio("guidance_interval_high", T::Float, 1.0, "sampling", 3, "Guidance Interval End")
          .min(0.0)
          .max(1.0)
          .help("Apply guidance only for times below this value."),
      // Runtime
      studio("device", T::Choice, "auto", "runtime", 1, "Device")
          .choices({"auto", "cpu", "cuda"})
          .help("Where to train: auto takes CUDA when the worker's LibTorch has it and a GPU is present, else the "
                "CPU."),
      studio("threads", T::Int, 0, "runtime", 2, "CPU Threads")
          .min(0)
          .help("LibTorch CPU threads of the worker (0: one per core); lower it to keep the window responsive."),
      studio("run_name", T::String, "", "runtime", 3, "Run Name")
          .help("Name of the run folder inside output_dir: one folder name, no '/', '.' or '..' (empty: a "
                "timestamp)."),
      studio("skip_memory_check", T::Bool, false, "runtime", 4, "Skip Memory Check")
          .help("Start even when the estimated memory of a step (weights, optimizer state, the batch's "
                "activations and images) exceeds what the machine has available; without it such a run is "
                "refused before anything is allocated."),
      studio("num_processes", T::Int, 1, "runtime", 5, "Processes")
          .min(1)
          .max(64)
          .help("Data-parallel training processes on this machine (one per GPU; on a CPU, each with its own "
                "threads): train_batch_size is per process, gradients are averaged across them (docs/"
                "distributed.md). Exported to SimpleTuner as accelerate's --num_processes."),
      studio("distributed_timeout", T::Int, 300, "runtime", 6, "Process Timeout (s)")
          .min(5)
          .show_if("studio.num_processes", "greater_than", 1)
          .help("Seconds a process waits for the others in a step before the run stops and names the process "
                "that died or hangs (cache filling waits without it)."),
  };
}

}  // namespace repa::config::detail
