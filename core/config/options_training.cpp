// The SimpleTuner run settings the studio's trainer reads (model, schedule, optimizer, precision,
// checkpoints, EMA, validation), declared as SimpleTuner registers them, and a few it does not read, kept for
// export (export_only(): the trainer has its own way, e.g. studio.dataset_dir for data_backend_config). Where the
// studio's range differs from SimpleTuner's web form the reason is noted (tests/config/tst_simpletuner_options.cpp
// lists them): resolution goes down to 8 px for small pixel-space models, train_batch_size has no upper bound (the REPA
// paper trains at 256; SimpleTuner's parser takes any size), validation_step_interval and minimum_image_size
// accept 0 (never, no minimum), as SimpleTuner's own examples use them. Selects whose choices SimpleTuner fills
// at run time are strings here.
#include "core/config/native_training.h"
#include "core/config/option_builder.h"

namespace repa::config::detail {
namespace {

using T = OptionType;
constexpr auto Bool = T::Bool;
constexpr auto Int = T::Int;
constexpr auto Float = T::Float;
constexpr auto Choice = T::Choice;
constexpr auto String = T::String;
constexpr auto Path = T::Path;
constexpr auto Json = T::Json;

// The families the studio trains natively, each on SimpleTuner's aspect buckets.
nlohmann::json bucketing_families() { return nlohmann::json(natively_trained_families()); }

}  // namespace

std::vector<OptionSpec> training_options() {
  return {
      Declare("model_family", Choice, nullptr)
          .at("model", "model_config", "architecture", 2)
          .label("Model Family")
          .choices({"ace_step",
                    "anima",
                    "auraflow",
                    "boogu_image",
                    "chroma",
                    "cosmos",
                    "cosmos3",
                    "deepfloyd",
                    "ernie",
                    "flux",
                    "flux2",
                    "heartmula",
                    "hidream",
                    "hunyuanvideo",
                    "ideogram",
                    "infinitetalk",
                    "kandinsky5_image",
                    "kandinsky5_video",
                    "kolors",
                    "krea2",
                    "longcat_image",
                    "longcat_video",
                    "ltxvideo",
                    "ltxvideo2",
                    "lumina2",
                    "mageflow",
                    "minimaxh3",
                    "minimaxmusic",
                    "omnigen",
                    "pixart",
                    "qwen_image",
                    "sana",
                    "sanavideo",
                    "sd1x",
                    "sd3",
                    "sdxl",
                    "stable_cascade",
                    "wan",
                    "wan_s2v",
                    "z_image",
                    "z_image_omni",
                    "zlab_i1"})
          .help("Model family the config is written for; decides REPA (transformers) or U-REPA (UNets)."),
      Declare("model_flavour", String, nullptr)
          .export_only()
          .at("model", "model_config", "architecture", 3)
          .label("Model Flavour")
          .show_if("model_family", "not_equals", "")
          .help("Variant of the model family (SimpleTuner's flavour name)."),
      Declare("model_type", Choice, "full")
          .at("model", "model_config", "architecture", 1)
          .label("Model Type")
          .choices({"full", "lora"})
          .help("Full fine-tuning (every weight trains) or LoRA (small adapters train, the base stays frozen and "
                "needs far less memory)."),
      // LoRA (model_type "lora"): the studio's trainer trains these adapters itself (core/adapters, docs/lora.md).
      Declare("lora_rank", Int, 16)
          .at("model", "lora_config", "basic", 1)
          .label("LoRA Rank")
          .min(1)
          .max(256)
          .show_if("model_type", "equals", "lora")
          .help("Rank r of each adapter: A is r x in, B is out x r."),
      Declare("lora_alpha", Float, nullptr)
          .at("model", "lora_config", "advanced", 2)
          .label("LoRA Alpha")
          .min(0.1)
          .show_if("model_type", "equals", "lora")
          .help("The adapter adds (alpha / rank) B A x; unset means alpha = rank (scale 1)."),
      Declare("lora_type", Choice, "standard")
          .at("model", "lora_config", "basic", 3)
          .label("LoRA Type")
          .choices({"standard", "lycoris"})
          .show_if("model_type", "equals", "lora")
          .help("Standard (peft) LoRA; LyCORIS is kept for a SimpleTuner export and stops a native run."),
      Declare("peft_lora_target_modules", String, nullptr)
          .at("model", "lora_config", "advanced", 3.6)
          .label("PEFT LoRA Target Modules")
          .show_if("model_type", "equals", "lora")
          .show_if("lora_type", "equals", "standard")
          .help("JSON list of module names (suffix match) or one regular expression; replaces the family's targets."),
      Declare("lora_dropout", Float, 0.1)
          .at("model", "lora_config", "advanced", 4)
          .label("LoRA Dropout")
          .min(0.0)
          .max(1.0)
          .show_if("model_type", "equals", "lora")
          .show_if("lora_type", "equals", "standard")
          .help("Dropout on the adapters' input while training."),
      Declare("lora_init_type", Choice, "default")
          .at("model", "lora_config", "advanced", 5)
          .label("LoRA Initialization Type")
          .choices({"default", "gaussian", "loftq", "olora", "pissa"})
          .show_if("model_type", "equals", "lora")
          .show_if("lora_type", "equals", "standard")
          .help("default: kaiming-uniform A, zero B; gaussian: normal A, zero B (others: SimpleTuner only)."),
      Declare("init_lora", String, nullptr)
          .at("model", "lora_config", "advanced", 8)
          .label("Initialize from LoRA")
          .show_if("model_type", "equals", "lora")
          .help("A LoRA file (diffusers or ComfyUI format) to start the adapters from."),
      Declare("lora_format", Choice, "diffusers")
          .at("model", "lora_config", "advanced", 8.9)
          .label("LoRA Format")
          .choices({"diffusers", "comfyui"})
          .show_if("model_type", "equals", "lora")
          .help("Names in the saved adapter file: diffusers' (alpha in the header) or ComfyUI's (alpha tensors)."),
      Declare("use_dora", Bool, false)
          .at("model", "lora_config", "advanced", 20)
          .label("Use DoRA")
          .show_if("model_type", "equals", "lora")
          .show_if("lora_type", "equals", "standard")
          .help("Weight-decomposed LoRA: a trained magnitude per output row."),
      Declare("pretrained_model_name_or_path", String, nullptr)
          .at("model", "model_config", "advanced_paths", 4)
          .label("Base Model Path")
          .help("Base model to start from (Hub name or local folder)."),
      Declare("pretrained_vae_model_name_or_path", String, "madebyollin/sdxl-vae-fp16-fix")
          .export_only()
          .at("model", "model_config", "advanced_paths", 27)
          .label("VAE Model Path")
          .help("VAE to use instead of the model's own, as a folder, file or Hub id (e.g. a fixed fp16 SDXL VAE)."),
      Declare("output_dir", Path, "simpletuner-results")
          .at("basic", "essential_settings", "paths", 5)
          .label("Output Directory")
          .help("Folder that receives checkpoints, samples and logs."),
      Declare("resolution", Int, 1024)
          .at("basic", "training_essentials", "", 3)
          .label("Training Resolution")
          .min(8)
          .max(4096)
          .help("Training image size in pixels (the side of the square crop); the vision encoder gets its own size."),
      // Aspect buckets: every natively trained family buckets its images as SimpleTuner does; on studio.dataset_dir
      // these are the dataset's settings, under a multidatabackend.json its entry's keys win.
      Declare("resolution_type", Choice, "pixel_area")
          .honoured_when("model_family", "in", bucketing_families())
          .at("basic", "image_processing", "advanced", 2)
          .label("Resolution Type")
          .choices({"pixel", "area", "pixel_area"})
          .help("How a family run sizes its aspect buckets from resolution: pixel (the shorter edge is resolution), "
                "pixel_area (the area of a resolution x resolution square, SimpleTuner's default) or area (resolution "
                "in megapixels; only in a multidatabackend.json, as studio.dataset_dir runs give resolution in "
                "pixels)."),
      Declare("aspect_bucket_rounding", Int, 2)
          .honoured_when("model_family", "in", bucketing_families())
          .at("basic", "image_processing", "advanced", 15)
          .label("Aspect Bucket Rounding Precision")
          .min(1)
          .max(9)
          .help("Decimal places of an aspect bucket's ratio (2: 1.78); more places make more, smaller buckets."),
      Declare("minimum_image_size", Int, nullptr)
          .honoured_when("model_family", "in", bucketing_families())
          .at("basic", "image_processing", "", 69)
          .label("Minimum Image Size")
          .min(0)
          .help("A family run skips images with a side under this many pixels (with pixel_area: under the area of "
                "this square), naming each in the run log; unset or 0, none is skipped and small images are upscaled."),
      Declare("train_batch_size", Int, 4)
          .at("basic", "training_data", "", 3)
          .label("Training Batch Size")
          .min(1)
          .help("Images per optimizer step on each device; larger batches give smoother gradients and need more "
                "memory."),
      Declare("gradient_accumulation_steps", Int, 1)
          .at("training", "training_schedule", "", 4)
          .label("Gradient Accumulation Steps")
          .min(1)
          .help("Steps whose gradients are summed before one optimizer update."),
      Declare("learning_rate", Float, 4e-07)
          .at("training", "learning_rate", "", 1)
          .label("Learning Rate")
          .min(0)
          .max(1)
          .help("Peak learning rate, reached after the warm-up (1e-4 in the REPA and SiT papers for AdamW)."),
      Declare("lr_scheduler", Choice, "constant_with_warmup")
          .at("training", "learning_rate", "", 2)
          .label("Learning Rate Scheduler")
          .choices(
              {"linear", "sine", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"})
          .help("How the learning rate changes over training after its warm-up: constant, linear or cosine decay, "
                "and others."),
      Declare("lr_warmup_steps", Int, 0)
          .at("training", "learning_rate", "", 3)
          .label("Learning Rate Warmup Steps")
          .min(0)
          .help("Steps over which the learning rate ramps up from 0."),
      Declare("lr_num_cycles", Int, 1)
          .at("training", "learning_rate", "", 5)
          .label("LR Scheduler Cycles")
          .min(1)
          .show_if("lr_scheduler", "equals", "cosine_with_restarts")
          .help("Number of hard restarts of the cosine schedule over the run (cosine with restarts only)."),
      Declare("lr_power", Float, 0.8)
          .at("training", "learning_rate", "", 6)
          .label("LR Polynomial Power")
          .min(0.1)
          .show_if("lr_scheduler", "equals", "polynomial")
          .help("Exponent of the polynomial learning-rate decay."),
      Declare("max_train_steps", Int, nullptr)
          .at("training", "training_schedule", "", 2)
          .label("Max Training Steps")
          .min(0)
          .help("Stop after this many optimizer steps (unset or 0: use num_train_epochs)."),
      Declare("num_train_epochs", Int, 1)
          .export_only()
          .at("training", "training_schedule", "", 1)
          .label("Number of Epochs")
          .min(0)
          .max(1000)
          .help("Passes over the dataset when max_train_steps is not set."),
      Declare("optimizer", String, "adamw_bf16")
          .at("training", "optimizer_config", "", 5)
          .label("Optimizer")
          .help("Optimizer (SimpleTuner's name; the studio trains with AdamW)."),
      Declare("optimizer_beta1", Float, nullptr)
          .export_only()
          .at("training", "optimizer_config", "advanced", 3)
          .label("Optimizer Beta 1")
          .min(0)
          .max(1)
          .help("First-moment decay for optimizers other than Adam (unset: the optimizer's default)."),
      Declare("optimizer_beta2", Float, nullptr)
          .export_only()
          .at("training", "optimizer_config", "advanced", 4)
          .label("Optimizer Beta 2")
          .min(0)
          .max(1)
          .help("Second-moment decay for optimizers other than Adam (unset: the optimizer's default)."),
      Declare("adam_beta1", Float, 0.9)
          .at("training", "optimizer_config", "advanced", 1)
          .label("Adam Beta 1")
          .min(0)
          .max(1)
          .show_if("optimizer", "in",
                   nlohmann::json::array({"adamw", "adamw_bf16", "adamw8bit", "adam", "adam8bit", "ao-adamw8bit",
                                          "ao-adamw4bit", "ao-adamwfp8", "optimi-adamw", "StableAdamWUnfused",
                                          "deepspeed-adamw"}))
          .help("AdamW's first-moment (gradient average) decay; 0.9 is the usual value."),
      Declare("adam_beta2", Float, 0.999)
          .at("training", "optimizer_config", "advanced", 2)
          .label("Adam Beta 2")
          .min(0)
          .max(1)
          .show_if("optimizer", "in",
                   nlohmann::json::array({"adamw", "adamw_bf16", "adamw8bit", "adam", "adam8bit", "ao-adamw8bit",
                                          "ao-adamw4bit", "ao-adamwfp8", "optimi-adamw", "StableAdamWUnfused",
                                          "deepspeed-adamw"}))
          .help("AdamW's second-moment (squared gradient average) decay; 0.999 is the usual value."),
      Declare("adam_weight_decay", Float, 0.01)
          .at("training", "optimizer_config", "advanced", 3)
          .label("Weight Decay")
          .min(0.0)
          .show_if("optimizer", "in",
                   nlohmann::json::array({"adamw", "adamw_bf16", "adamw8bit", "adam", "adam8bit", "ao-adamw8bit",
                                          "ao-adamw4bit", "ao-adamwfp8", "optimi-adamw", "StableAdamWUnfused",
                                          "deepspeed-adamw"}))
          .help("AdamW's decoupled weight decay, applied to the weights at each step (0 in the REPA paper)."),
      Declare("adam_epsilon", Float, 1e-08)
          .at("training", "optimizer_config", "advanced", 4)
          .label("Adam Epsilon")
          .min(0.0)
          .show_if("optimizer", "in",
                   nlohmann::json::array({"adamw", "adamw_bf16", "adamw8bit", "adam", "adam8bit", "ao-adamw8bit",
                                          "ao-adamw4bit", "ao-adamwfp8", "optimi-adamw", "StableAdamWUnfused",
                                          "deepspeed-adamw"}))
          .help("AdamW's epsilon, added to the denominator for numerical stability; rarely worth changing."),
      Declare("max_grad_norm", Float, 2.0)
          .at("training", "optimizer_config", "", 6)
          .label("Max Gradient Norm")
          .min(0.0)
          .help("Clip the gradient norm to this value (0: no clipping)."),
      Declare("mixed_precision", Choice, "bf16")
          .at("model", "memory_optimization", "advanced", 10)
          .label("Mixed Precision")
          .choices({"no", "fp16", "bf16", "fp8"})
          .show_if("i_know_what_i_am_doing", "equals", true)
          .help("Number format of the forward pass: none, fp16, bf16 or fp8."),
      Declare("seed", Int, nullptr)
          .at("basic", "project", "advanced", 9)
          .label("Training Seed")
          .min(0)
          .max(2147483647)
          .help("Random seed for noise, timesteps and data order; a fixed seed makes a run repeatable (unset: a "
                "fresh one each run)."),
      Declare("checkpoint_step_interval", Int, 500)
          .at("training", "checkpointing", "", 1)
          .label("Checkpoint Every N Steps")
          .min(1)
          .alias("checkpointing_steps")
          .help("Save a checkpoint every this many optimizer steps; a run can resume from the latest one."),
      Declare("checkpoints_total_limit", Int, 5)
          .at("training", "checkpointing", "", 2)
          .label("Maximum Checkpoints to Keep")
          .min(0)
          .help("Keep at most this many checkpoints (0: keep all)."),
      Declare("resume_from_checkpoint", String, "latest")
          .at("basic", "training_config", "", 11)
          .label("Resume From Checkpoint")
          .help("Checkpoint to resume from: \"latest\", a path, or empty for a fresh start."),
      Declare("use_ema", Bool, false)
          .at("model", "ema_config", "", 0)
          .label("Enable EMA")
          .help("Keep an exponential moving average of the weights."),
      Declare("ema_decay", Float, 0.995)
          .at("model", "ema_config", "", 5)
          .label("EMA Decay")
          .min(0.0)
          .max(0.9999)
          .show_if("use_ema", "equals", true)
          .help("Decay of that moving average: 0.9999 follows the weights over roughly the last 10,000 steps, lower "
                "follows faster."),
      Declare("ema_update_interval", Int, 1)
          .export_only()
          .at("model", "ema_config", "", 3)
          .label("EMA Update Interval")
          .min(1)
          .show_if("use_ema", "equals", true)
          .help("Update the moving average every this many steps."),
      Declare("validation_step_interval", Int, 100)
          .at("validation", "validation_schedule", "", 1)
          .label("Validation Step Interval")
          .min(0)
          .alias("validation_steps")
          .help("Draw validation samples every this many steps (0: never)."),
      Declare("validation_num_inference_steps", Int, 30)
          .at("validation", "validation_schedule", "advanced", 4)
          .label("Inference Steps")
          .min(1)
          .help("Sampling steps of each validation image; more steps cost time and give cleaner samples."),
      Declare("validation_guidance", Float, 7.5)
          .at("validation", "validation_guidance", "", 1)
          .label("Guidance Scale")
          .min(1)
          .max(30)
          .help("Classifier-free guidance scale of the validation images."),
      // The model families' trainer draws its samples from prompts; the studio's own backbones from classes, so
      // these apply to family runs only (shown as SimpleTuner shows them; the trainer column says when).
      Declare("validation_prompt", String, nullptr)
          .at("validation", "prompt_management", "", 1)
          .label("Validation Prompt")
          .honoured_when("model_family", "is_set", nullptr)
          .help("Prompt of the validation images of a model family run (empty: the first four distinct captions of "
                "the dataset); studio.validation_prompts adds more."),
      Declare("studio.validation_prompts", Json, nullptr)
          .at("validation", "prompt_management", "", 1.5)
          .label("More Validation Prompts")
          .studio_only()
          .show_if("model_family", "is_set", nullptr)
          .help("A list of prompts drawn after validation_prompt at each validation, e.g. [\"a red disc\", "
                "\"a blue ring\"]; each sample in the Samples tab shows its prompt. The studio's own setting: an "
                "export for SimpleTuner drops it (SimpleTuner reads a prompt library file instead)."),
      Declare("validation_negative_prompt", String, "blurry, cropped, ugly")
          .at("validation", "prompt_management", "", 2)
          .label("Negative Prompt")
          .honoured_when("model_family", "is_set", nullptr)
          .help("What classifier-free guidance steers the validation images away from (the unconditional side of "
                "the guidance); SimpleTuner's default."),
      Declare("validation_seed", Int, nullptr)
          .at("validation", "validation_options", "", 6)
          .label("Validation Seed")
          .min(0)
          .show_if("validation_randomize", "equals", false)
          .honoured_when("model_family", "is_set", nullptr)
          .help("Seed of the validation images' starting noise, the same at every validation so the images compare "
                "across steps (empty: derived from seed)."),
      Declare("num_validation_images", Int, 1)
          .export_only()
          .at("validation", "validation_schedule", "advanced", 3)
          .label("Validation Images Count")
          .min(1)
          .max(10)
          .help("Validation images drawn per prompt or class at each validation."),
      Declare("gradient_checkpointing", Bool, true)
          .honoured_when("model_family", "not_equals", "")
          .at("model", "memory_optimization", "", 1)
          .label("Enable Gradient Checkpointing")
          .help("Recompute activations in the backward pass to save memory."),
      Declare("data_backend_config", Path, nullptr)
          .at("basic", "data_config", "", 1)
          .label("Data Backend Config")
          .help("SimpleTuner's dataset description (multidatabackend.json): native runs read its image dataset "
                "instead of studio.dataset_dir (docs/text-conditioning.md); the export writes one for "
                "studio.dataset_dir."),
      Declare("report_to", Choice, "none")
          .export_only()
          .at("basic", "project_settings", "", 1)
          .label("Logging Platform")
          .choices({"simpletuner", "tensorboard", "wandb", "swanlab", "comet_ml", "custom-tracker", "all", "none"})
          .help("Where SimpleTuner sends its metrics (TensorBoard, Weights & Biases, …); the studio always writes "
                "metrics.jsonl and its own charts."),
      // Honoured: it only unlocks expert settings, in the studio's panels as in SimpleTuner's.
      Declare("i_know_what_i_am_doing", Bool, false)
          .at("basic", "project", "advanced", 0)
          .label("I Know What I'm Doing")
          .help("Unlock SimpleTuner's expert settings (shows them in the panels)."),
  };
}

}  // namespace repa::config::detail
