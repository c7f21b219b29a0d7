// Tab "training", section "loss_functions": every field SimpleTuner shows there, with its exact name, type,
// default, range, choices, label, order and visibility rule; our own help text. The main group comes
// first, then the "advanced" subsection, each by SimpleTuner's order. One deliberate difference: the encoder
// image sizes go down to 14 px (one DINOv2 patch) where SimpleTuner's web form asks for 64; its command line
// takes any size, and the demo feeds 56 px images to a small encoder.
#include "core/config/option_builder.h"

namespace repa::config::detail {
namespace {

using T = OptionType;
constexpr auto Bool = T::Bool;
constexpr auto Int = T::Int;
constexpr auto Float = T::Float;
constexpr auto Choice = T::Choice;
constexpr auto String = T::String;
constexpr auto Json = T::Json;

Declare loss(const char* key, OptionType type, nlohmann::json default_value, double order, const char* label) {
  return Declare(key, type, std::move(default_value)).at("training", "loss_functions", "", order).label(label);
}

Declare loss_advanced(const char* key, OptionType type, nlohmann::json default_value, double order, const char* label) {
  return Declare(key, type, std::move(default_value)).at("training", "loss_functions", "advanced", order).label(label);
}

// The families whose sigmas the worker draws from the flow_* options (core/diffusion/flow_sigmas.h).
nlohmann::json flow_families() { return nlohmann::json::array({"sd3", "flux", "chroma"}); }

}  // namespace

std::vector<OptionSpec> loss_options() {
  return {
      loss("loss_type", Choice, "l2", 1, "Loss Function")
          .choices({"l2", "huber", "smooth_l1"})
          .help("Distance between prediction and target. L2 squares each error, so large mistakes dominate; Huber "
                "and smooth L1 grow only linearly past a threshold, which limits what a few unusual images can do. "
                "L2 suits most datasets."),
      loss("huber_schedule", Choice, "snr", 2, "Huber Schedule")
          .choices({"snr", "exponential", "constant"})
          .show_if("loss_type", "equals", "huber")
          .help("How the Huber threshold follows the timestep (SNR-based by default, exponential, or fixed). Only "
                "read with the Huber loss."),
      loss("huber_c", Float, 0.1, 3, "Huber C Threshold")
          .min(0.0)
          .show_if("loss_type", "equals", "huber")
          .help("Where the Huber loss turns from quadratic to linear: smaller values act like L1 sooner, larger "
                "ones stay closer to L2."),
      loss("snr_gamma", Int, nullptr, 4, "SNR Gamma")
          .min(0)
          .honoured_when("studio.objective", "in", nlohmann::json::array({"vp_epsilon", "vp_v"}))
          .help("Min-SNR weighting: clamp the per-timestep loss weight at this SNR, so easy (low-noise) timesteps "
                "stop dominating. Unset: no weighting. 5 is the usual value for epsilon and v-prediction models."),
      loss("masked_loss_probability", Float, 1.0, 5, "Masked Loss Probability")
          .export_only()
          .min(0.0)
          .max(1.0)
          .help("Chance per batch of weighting the loss by the dataset's masks; lower it when masks are sparse."),
      loss("xm_enabled", Bool, false, 5.1, "Enable XM")
          .export_only()
          .help("Explorative modelling (XM): score several noise candidates per sample and back-propagate only the "
                "one that explains it best. Only for families that implement XM."),
      loss("xm_candidate_count", Int, 1, 5.2, "XM Candidates")
          .export_only()
          .min(2)
          .show_if("xm_enabled", "equals", true)
          .range_only_when_visible()
          .help("Candidates scored per sample (at least 2 while XM is on); 2 or 4 is a good start, and the cost "
                "grows about linearly with the count."),
      loss("xm_training_target", Choice, "noise", 5.3, "XM Training Target")
          .export_only()
          .choices({"noise", "route"})
          .show_if("xm_enabled", "equals", true)
          .help("What XM chooses among: noise latents (diffusion and flow models) or route embeddings "
                "(autoregressive planners that provide them)."),
      loss("xm_selection_scope", Choice, "sample", 5.4, "XM Selection Scope")
          .export_only()
          .choices({"sample", "block"})
          .show_if("xm_enabled", "equals", true)
          .help("Pick the best candidate per whole sample (the safe choice for diffusion) or per block of tokens or "
                "frames (meant for autoregressive models with stable route spans)."),
      loss("xm_block_size", Int, 0, 5.5, "XM Block Size")
          .export_only()
          .min(0)
          .show_if("xm_enabled", "equals", true)
          .show_if("xm_selection_scope", "equals", "block")
          .help("Tokens or frames per block when choosing per block; 0 takes the whole sequence. Avoid 1 for music "
                "route selection: it lets the route switch at every token."),
      loss("nextlat_enabled", Bool, false, 5.6, "Enable NextLat")
          .help("NextLat: a small head learns to predict each captured hidden token's successor from a transformer "
                "block. For families that expose token hidden states.")
          .export_only(),
      loss("nextlat_block_index", Int, -1, 5.7, "NextLat Block Index")
          .export_only()
          .show_if("nextlat_enabled", "equals", true)
          .help("Transformer block (from 0) whose hidden states NextLat captures; -1 takes the last one the model "
                "supports. A late block suits autoregressive planners, a middle-to-late block diffusion and video "
                "transformers."),
      loss("nextlat_weight", Float, 0.0, 5.8, "NextLat Weight")
          .export_only()
          .min(0.0001)
          .show_if("nextlat_enabled", "equals", true)
          .range_only_when_visible()
          .help("Weight of the NextLat loss; must be above 0 while NextLat is on."),
      loss("nextlat_state_loss", Choice, "smooth_l1", 5.9, "NextLat State Loss")
          .export_only()
          .choices({"smooth_l1", "mse"})
          .show_if("nextlat_enabled", "equals", true)
          .help("Distance between predicted and actual hidden states; smooth L1 shrugs off rare large errors better "
                "than MSE."),
      loss("nextlat_kl_weight", Float, 0.0, 5.95, "NextLat KL Weight")
          .export_only()
          .min(0.0)
          .show_if("nextlat_enabled", "equals", true)
          .help("Weight of an extra KL agreement term, only possible when the family provides a logits head for the "
                "predicted states; leave it at 0 otherwise."),
      loss("hidream_use_load_balancing_loss", Bool, false, 6, "Enable HiDream Load Balancing Loss")
          .export_only()
          .show_if("model_family", "equals", "hidream")
          .help("Add HiDream's mixture-of-experts load-balancing loss."),
      loss("irepa_enabled", Bool, false, 6, "Enable iREPA")
          .help("iREPA: upgrade REPA or U-REPA with a spatially normalised teacher and a convolutional projector. "
                "Needs REPA (transformers) or U-REPA (UNets) turned on as well."),
      loss("hidream_load_balancing_loss_weight", Float, nullptr, 7, "HiDream Load Balancing Weight")
          .export_only()
          .min(0.0)
          .show_if("hidream_use_load_balancing_loss", "equals", true)
          .help("Weight of HiDream's mixture-of-experts load-balancing loss, which keeps the experts evenly used."),
      loss("irepa_spatial_norm_alpha", Float, 0.6, 7, "iREPA Spatial Norm Alpha")
          .min(0.0)
          .show_if("irepa_enabled", "equals", true)
          .help("How much of each teacher channel's spatial mean iREPA subtracts: 0.6 follows the latent-diffusion "
                "recipe, 1.0 centres every channel fully."),
      loss("irepa_projector_kernel_size", Choice, 3, 7.1, "iREPA Projector Kernel")
          .choices({1, 3, 5, 7})
          .show_if("irepa_enabled", "equals", true)
          .help("Kernel of iREPA's convolutional projector; 3 x 3 is the published architecture."),
      loss("crepa_enabled", Bool, false, 8, "Enable CREPA")
          .help("REPA for transformer (DiT-style) backbones: align the hidden states of one block with a frozen "
                "vision encoder's tokens (DINOv2 by default). For UNet families use U-REPA instead."),
      loss("crepa_block_index", Int, 8, 9, "CREPA Block Index")
          .min(0)
          .show_if("crepa_enabled", "equals", true)
          .help("Block whose output is aligned, counted from 0 (index k taps the output of block k+1). Tap an "
                "early, encoder-side block, a quarter to a third into the stack: the REPA paper aligns SiT-XL/2 "
                "after block 8 of 28 (index 7); early blocks carry the spatial structure."),
      loss("crepa_lambda", Float, 0.5, 10, "CREPA Weight")
          .min(0.0)
          .show_if("crepa_enabled", "equals", true)
          .help("Weight of the alignment loss. The REPA paper uses 0.5; 0.5 to 1.0 regularises more strongly."),
      loss("crepa_adjacent_distance", Int, 1, 11, "CREPA Adjacent Distance")
          .export_only()
          .min(0)
          .show_if("crepa_enabled", "equals", true)
          .help("Video: how many neighbouring frames on each side a frame is also aligned with; 1 takes the "
                "immediate neighbours, more widens the window at extra cost."),
      loss("crepa_adjacent_tau", Float, 1.0, 12, "CREPA Temporal Decay")
          .export_only()
          .min(0.01)
          .show_if("crepa_enabled", "equals", true)
          .help("Video: how fast a neighbour's weight decays with its distance (smaller = faster)."),
      loss("crepa_encoder", String, "dinov2_vitg14", 13, "CREPA Vision Model")
          .show_if("crepa_enabled", "equals", true)
          .help("Frozen vision encoder that provides the teacher tokens: a DINOv2 name such as dinov2_vitg14 (the "
                "default) or dinov2_vitb14; SimpleTuner also accepts Qwen-VL aliases."),
      loss("crepa_encoder_frames_batch_size", Int, -1, 14, "CREPA image encoder frames batch size")
          .export_only()
          .show_if("crepa_enabled", "equals", true)
          .help("Frames the encoder processes at once; 0 or below sends every frame of the batch together. Smaller "
                "slices save memory and cost speed."),
      loss("crepa_use_backbone_features", Bool, false, 15, "CREPA: Use Backbone Features")
          .refused_by_trainer("takes REPA's teacher from the vision encoder only, never from a backbone block")
          .show_if("crepa_enabled", "equals", true)
          .help("Legacy flag: take the teacher from a deeper block of the model itself instead of an external "
                "encoder (no DINO to load). Prefer crepa_feature_source = backbone."),
      loss("crepa_feature_source", Choice, "encoder", 15.1, "CREPA Feature Source")
          .refused_by_trainer("takes REPA's teacher from the vision encoder only (crepa_feature_source \"encoder\")")
          .choices({"encoder", "backbone", "self_flow"})
          .show_if("crepa_enabled", "equals", true)
          .help("Where the teacher tokens come from: an external vision encoder (the papers' setup), a deeper block "
                "of the backbone, or Self-Flow's EMA teacher. Self-Flow needs use_ema on and an explicit teacher "
                "block (crepa_teacher_block_index)."),
      loss("crepa_self_flow", Bool, false, 15.2, "CREPA: Self-Flow Legacy Alias")
          .refused_by_trainer("takes REPA's teacher from the vision encoder only, never from self-flow")
          .show_if("crepa_enabled", "equals", true)
          .help("Legacy switch for Self-Flow; new configs set crepa_feature_source = self_flow and must not "
                "contradict it."),
      loss("crepa_teacher_block_index", Int, nullptr, 16, "CREPA Teacher Block")
          .export_only()
          .min(0)
          .show_if("crepa_enabled", "equals", true)
          .help("Backbone block that teaches when the teacher is internal (backbone or Self-Flow); pick a later, "
                "stronger block than the student. Unset: the student block itself; Self-Flow requires it to be set."),
      loss("crepa_self_flow_mask_ratio", Float, 0.1, 16.1, "Self-Flow Mask Ratio")
          .export_only()
          .min(0.0)
          .max(0.5)
          .show_if("crepa_enabled", "equals", true)
          .help("Share of tokens that get the alternate timestep in Self-Flow mode; the Self-Flow paper used 0.25. "
                "Stay at or below 0.5 so the generative objective keeps the upper hand."),
      loss("crepa_encoder_image_size", Int, 518, 17, "CREPA Encoder Resolution")
          .min(14)
          .show_if("crepa_enabled", "equals", true)
          .help("Image size fed to the vision encoder: its pretraining size (518 for DINOv2 ViT-g/14, 224 for "
                "ViT-S/14 or for speed). The studio accepts down to 14 px, one DINOv2 patch."),
      loss("crepa_drop_vae_encoder", Bool, false, 18, "CREPA: Drop VAE Encoder")
          .honoured_when("studio.teacher_input", "equals", "vae_decode")
          .show_if("crepa_enabled", "equals", true)
          .help("Free the VAE's encoder after loading to save memory; only safe when every latent comes from a "
                "cache, since new images can no longer be encoded."),
      loss("crepa_normalize_by_frames", Bool, true, 19, "CREPA: Normalize by Frames")
          .export_only()
          .show_if("crepa_enabled", "equals", true)
          .help("Video: divide the alignment by the number of frames so the loss scale does not grow with clip "
                "length; off lets longer clips weigh more."),
      loss("crepa_normalize_neighbour_sum", Bool, false, 19.5, "CREPA: Normalize Neighbour Sum")
          .export_only()
          .show_if("crepa_enabled", "equals", true)
          .help("Video: divide the neighbour sum by the sum of the neighbour weights, keeping the alignment score "
                "within [-1, 1] (experimental)."),
      loss("crepa_spatial_align", Bool, true, 20, "CREPA: Spatial Token Align")
          .show_if("crepa_enabled", "equals", true)
          .help("Align token by token, resampling the patch grids to match; off pools both sides first, which saves "
                "memory."),
      loss("crepa_use_tae", Bool, false, 21, "CREPA: Use Tiny AutoEncoder")
          .honoured_when("studio.teacher_input", "equals", "vae_decode")
          .show_if("crepa_enabled", "equals", true)
          .help("Decode frames for the teacher with a tiny autoencoder: faster and lighter, lower quality; only for "
                "families with a TAE (e.g. Wan)."),
      loss("twinflow_enabled", Bool, false, 21, "Enable TwinFlow (RCGM)")
          .export_only()
          .show_if("distillation_method", "equals", nullptr)
          .show_if("scheduled_sampling_max_step_offset", "equals", 0)
          .help("TwinFlow (RCGM): add a recursive consistency loss that teaches flow-matching models to generate in "
                "1 to 4 steps with guidance built in; validation then samples with the target step count and no "
                "CFG. Not with distillation or scheduled sampling."),
      loss("crepa_scheduler", Choice, "constant", 22, "CREPA Scheduler")
          .choices({"constant", "linear", "cosine", "polynomial"})
          .show_if("crepa_enabled", "equals", true)
          .help("How the alignment weight changes over training: constant, or a linear, cosine or polynomial decay "
                "from crepa_lambda to crepa_lambda_end, which relaxes the regulariser as training goes on."),
      loss("twinflow_target_step_count", Int, 1, 22, "TwinFlow Target Steps")
          .export_only()
          .min(1)
          .max(8)
          .show_if("twinflow_enabled", "equals", true)
          .help("Sampling steps TwinFlow trains for (1 to 8; 1 to 4 recommended): 1 for one-step generation, 2 to 4 "
                "for better few-step quality. Validation uses this many steps of the UCGM sampler with zero CFG."),
      loss("crepa_warmup_steps", Int, 0, 23, "CREPA Warmup Steps")
          .min(0)
          .show_if("crepa_enabled", "equals", true)
          .help("Steps over which the weight ramps linearly from 0 to crepa_lambda, so alignment does not disturb "
                "the first steps."),
      loss("internal_guidance_enabled", Bool, false, 23, "Enable Internal Guidance")
          .export_only()
          .help("Internal Guidance: train an extra denoising head on an early transformer block that predicts the "
                "same target as the final head; it is saved with the adapter."),
      loss("crepa_decay_steps", Int, 0, 24, "CREPA Decay Steps")
          .min(0)
          .show_if("crepa_enabled", "equals", true)
          .show_if("crepa_scheduler", "not_equals", "constant")
          .help("Step at which the decay reaches the end weight, counted from step 0 and not from the end of the "
                "warm-up (0: max_train_steps). The decay itself starts when the warm-up ends."),
      loss("internal_guidance_loss_weight", Float, 0.5, 24, "Internal Guidance Weight")
          .export_only()
          .min(0.0001)
          .show_if("internal_guidance_enabled", "equals", true)
          .help("Weight of the auxiliary head's denoising loss; the reference implementation uses 0.5."),
      loss("crepa_lambda_end", Float, 0.0, 25, "CREPA End Weight")
          .min(0.0)
          .show_if("crepa_enabled", "equals", true)
          .show_if("crepa_scheduler", "not_equals", "constant")
          .help("Weight the decay ends at; 0 switches alignment off by the end of the decay."),
      loss("internal_guidance_block_index", Int, nullptr, 25, "Internal Guidance Block")
          .export_only()
          .min(0)
          .show_if("internal_guidance_enabled", "equals", true)
          .help("Transformer block (from 0) that feeds the auxiliary head; unset takes a quarter of the depth. "
                "Early blocks worked best in the paper."),
      loss("crepa_power", Float, 1.0, 26, "CREPA Polynomial Power")
          .min(0.1)
          .show_if("crepa_enabled", "equals", true)
          .show_if("crepa_scheduler", "equals", "polynomial")
          .help("Exponent of the polynomial decay: 1 is linear, 2 quadratic; higher values drop faster at first and "
                "flatten later."),
      loss("validation_internal_guidance_scale", Float, 1.0, 26, "Internal Guidance Scale")
          .export_only()
          .min(0.0001)
          .show_if("internal_guidance_enabled", "equals", true)
          .help("Internal Guidance extrapolation during validation sampling: 1.0 turns it off; the reference "
                "implementation's main result uses 1.4."),
      loss("crepa_cutoff_step", Int, 0, 27, "CREPA Cutoff Step")
          .min(0)
          .show_if("crepa_enabled", "equals", true)
          .help("Step from which the alignment loss is off for good (0: never), e.g. once the representation has "
                "settled."),
      loss("layersync_enabled", Bool, false, 27, "Enable LayerSync")
          .export_only()
          .help("LayerSync: pull an earlier (student) block towards a later (teacher) block of the same model with "
                "a cosine-similarity loss; no external encoder."),
      loss("crepa_similarity_threshold", Float, nullptr, 28, "CREPA Similarity Threshold")
          .min(0.0)
          .max(1.0)
          .show_if("crepa_enabled", "equals", true)
          .help("Switch alignment off once the smoothed cosine similarity reaches this value, so it cannot over-fit "
                "the teacher (unset: never)."),
      loss("layersync_student_block", Int, nullptr, 28, "LayerSync Student Block")
          .export_only()
          .min(0)
          .show_if("layersync_enabled", "equals", true)
          .help("Block pulled towards the teacher; choose an earlier, weaker one. 1-based depths as in the paper "
                "are accepted."),
      loss("crepa_similarity_ema_decay", Float, 0.99, 29, "CREPA Similarity EMA Decay")
          .min(0.0)
          .max(1.0)
          .show_if("crepa_similarity_threshold", "is_set", true)
          .help("Decay of the moving average of the similarity compared with the threshold; 0.99 averages over "
                "roughly the last 100 steps, lower reacts faster."),
      loss("layersync_teacher_block", Int, nullptr, 29, "LayerSync Teacher Block")
          .export_only()
          .min(0)
          .show_if("layersync_enabled", "equals", true)
          .help("Block that teaches; a later, stronger one (unset: the student block). 1-based depths as in the "
                "paper are accepted."),
      loss("crepa_threshold_mode", Choice, "permanent", 30, "CREPA Threshold Mode")
          .choices({"permanent", "recoverable"})
          .show_if("crepa_similarity_threshold", "is_set", true)
          .help("What reaching the threshold does: Permanent switches alignment off for the rest of the run, "
                "Recoverable switches it back on when the similarity falls below the threshold again."),
      loss("layersync_lambda", Float, 0.2, 30, "LayerSync Weight")
          .export_only()
          .min(0.0)
          .show_if("layersync_enabled", "equals", true)
          .help("Weight of the LayerSync loss; it must be above 0 for LayerSync to act."),
      loss("urepa_enabled", Bool, false, 40, "Enable U-REPA")
          .help("U-REPA for UNet families (SDXL, SD 1.x/2.x, Kolors): align the UNet's mid-block output with a "
                "frozen vision encoder, plus a manifold term on the tokens' similarity structure. Transformers use "
                "REPA instead."),
      loss("urepa_lambda", Float, 0.5, 41, "U-REPA Weight")
          .min(0.0)
          .show_if("urepa_enabled", "equals", true)
          .help("Weight of the U-REPA loss; the paper recommends 0.5."),
      loss("urepa_manifold_weight", Float, 3.0, 42, "U-REPA Manifold Weight")
          .min(0.0)
          .show_if("urepa_enabled", "equals", true)
          .help("Weight of the manifold term (matching the tokens' similarity structure) inside the U-REPA loss; "
                "the paper recommends 3. With CLS teacher tokens (what SimpleTuner aligns) the term is always 0, a "
                "1x1 Gram, so SimpleTuner never applies it; with patch tokens (the studio's default) it applies."),
      loss("urepa_model", String, "dinov2_vitg14", 43, "U-REPA Vision Model")
          .show_if("urepa_enabled", "equals", true)
          .help("Vision encoder that provides the teacher tokens: a DINOv2 name such as dinov2_vitg14 (the default, "
                "ViT-g/14) or dinov2_vits14."),
      loss("urepa_encoder_image_size", Int, 518, 44, "U-REPA Encoder Resolution")
          .min(14)
          .show_if("urepa_enabled", "equals", true)
          .help("Image size fed to the vision encoder: its pretraining size (518 for DINOv2 ViT-g/14, 224 for "
                "ViT-S/14 or for speed)."),
      loss("urepa_use_tae", Bool, false, 45, "U-REPA: Use Tiny AutoEncoder")
          .honoured_when("studio.teacher_input", "equals", "vae_decode")
          .show_if("urepa_enabled", "equals", true)
          .help("Decode latents for the teacher with a tiny autoencoder: faster and lighter, lower quality."),
      loss("urepa_scheduler", Choice, "constant", 46, "U-REPA Scheduler")
          .choices({"constant", "linear", "cosine", "polynomial"})
          .show_if("urepa_enabled", "equals", true)
          .help("How the U-REPA weight changes over training: constant, or a linear, cosine or polynomial decay "
                "from urepa_lambda to urepa_lambda_end."),
      loss("urepa_warmup_steps", Int, 0, 47, "U-REPA Warmup Steps")
          .min(0)
          .show_if("urepa_enabled", "equals", true)
          .help("Steps over which the weight ramps linearly from 0 to urepa_lambda, which steadies the first steps."),
      loss("urepa_decay_steps", Int, 0, 48, "U-REPA Decay Steps")
          .min(0)
          .show_if("urepa_enabled", "equals", true)
          .show_if("urepa_scheduler", "not_equals", "constant")
          .help("Step at which the decay reaches the end weight, counted from step 0 and not from the end of the "
                "warm-up (0: max_train_steps). The decay itself starts when the warm-up ends."),
      loss("urepa_lambda_end", Float, 0.0, 49, "U-REPA End Weight")
          .min(0.0)
          .show_if("urepa_enabled", "equals", true)
          .show_if("urepa_scheduler", "not_equals", "constant")
          .help("Weight the decay ends at; 0 switches U-REPA off by the end of the decay."),
      loss("urepa_power", Float, 1.0, 50, "U-REPA Polynomial Power")
          .min(0.1)
          .show_if("urepa_enabled", "equals", true)
          .show_if("urepa_scheduler", "equals", "polynomial")
          .help("Exponent of the polynomial decay: 1 is linear, 2 quadratic; higher values drop faster at first and "
                "flatten later."),
      loss("urepa_cutoff_step", Int, 0, 51, "U-REPA Cutoff Step")
          .min(0)
          .show_if("urepa_enabled", "equals", true)
          .help("Step from which the U-REPA loss is off for good (0: never), e.g. once the representation has "
                "settled."),
      loss("urepa_similarity_threshold", Float, nullptr, 52, "U-REPA Similarity Threshold")
          .min(0.0)
          .max(1.0)
          .show_if("urepa_enabled", "equals", true)
          .help("Switch U-REPA off once the smoothed cosine similarity reaches this value, so it cannot over-fit "
                "the teacher (unset: never)."),
      loss("urepa_similarity_ema_decay", Float, 0.99, 53, "U-REPA Similarity EMA Decay")
          .min(0.0)
          .max(1.0)
          .show_if("urepa_similarity_threshold", "is_set", true)
          .help("Decay of the moving average of the similarity compared with the threshold; 0.99 averages over "
                "roughly the last 100 steps, lower reacts faster."),
      loss("urepa_threshold_mode", Choice, "permanent", 54, "U-REPA Threshold Mode")
          .choices({"permanent", "recoverable"})
          .show_if("urepa_similarity_threshold", "is_set", true)
          .help("What reaching the threshold does: Permanent switches U-REPA off for the rest of the run, "
                "Recoverable switches it back on when the similarity falls below the threshold again."),
      loss_advanced("use_soft_min_snr", Bool, false, 8, "Use Soft Min-SNR")
          .export_only()
          .show_if("snr_gamma", "greater_than", 0)
          .help("Weight the loss with the smooth (soft) variant of Min-SNR instead of the hard clamp."),
      loss_advanced("flow_sigmoid_scale", Float, 1.0, 20, "Flow Sigmoid Scale")
          .honoured_when("studio.timestep_sampling", "equals", "logit_normal")
          .min(0)
          .help("Scale of the logits before the sigmoid when drawing flow-matching timesteps."),
      loss_advanced("flow_use_uniform_schedule", Bool, false, 21, "Use Uniform Schedule")
          .honoured_when("model_family", "in", flow_families())
          .help("Draw flow-matching timesteps uniformly instead of from a sigmoid."),
      loss_advanced("flow_use_beta_schedule", Bool, false, 22, "Use Beta Schedule")
          .honoured_when("model_family", "in", flow_families())
          .help("Draw flow-matching timesteps from a Beta distribution."),
      loss_advanced("flow_beta_schedule_alpha", Float, 2.0, 23, "Beta Schedule Alpha")
          .honoured_when("model_family", "in", flow_families())
          .min(0)
          .help("Alpha of the Beta distribution that timesteps are drawn from (with flow_use_beta_schedule)."),
      loss_advanced("flow_beta_schedule_beta", Float, 2.0, 24, "Beta Schedule Beta")
          .honoured_when("model_family", "in", flow_families())
          .min(0)
          .help("Beta of the Beta distribution that timesteps are drawn from (with flow_use_beta_schedule)."),
      loss_advanced("flow_cubic_schedule_weights", Json, nullptr, 24.5, "Cubic Schedule Weights")
          .honoured_when("model_family", "in", flow_families())
          .help("Weights (a JSON list) of a cubic timestep schedule that shapes where training timesteps fall."),
      loss_advanced("flow_schedule_shift", Float, 3.0, 25, "Schedule Shift")
          .honoured_when("model_family", "in", flow_families())
          .min(0)
          .help("Shift of the flow-matching timesteps towards noise (higher) or detail (lower)."),
      loss_advanced("flow_schedule_auto_shift", Bool, false, 26, "Auto Shift Schedule")
          .honoured_when("model_family", "in", flow_families())
          .help("Derive the shift from the image's pixel count."),
      loss_advanced("mixflow_enabled", Bool, false, 26.05, "MixFlow Training")
          .export_only()
          .help("Mix the training input's noise level with a shifted one (MixFlow)."),
      loss_advanced("mixflow_gamma", Float, 0.8, 26.1, "MixFlow Gamma")
          .export_only()
          .min(0.0)
          .max(1.0)
          .show_if("mixflow_enabled", "equals", true)
          .help("How far MixFlow may move the noise level of the training input away from the drawn one."),
      loss_advanced("audio_flow_schedule_shift", Float, nullptr, 26.2, "Audio Schedule Shift")
          .export_only()
          .min(0)
          .help("Flow-matching timestep shift used for audio models instead of flow_schedule_shift."),
      loss_advanced("flow_custom_timesteps", String, nullptr, 26.5, "Custom Flow Timesteps")
          .honoured_when("model_family", "in", flow_families())
          .help("Fixed list of timesteps to train on, comma-separated."),
      loss_advanced("flow_timesteps_mode", Choice, "fixed-list", 26.6, "Flow Timesteps Mode")
          .honoured_when("model_family", "in", flow_families())
          .choices({"fixed-list", "round-robin"})
          .help("Whether custom timesteps are drawn from the list or visited in turn."),
      loss_advanced("diff2flow_enabled", Bool, false, 27, "Enable Diff2Flow Bridge")
          .export_only()
          .help("Bridge an epsilon/v-prediction model to a flow-matching objective."),
      loss_advanced("soft_min_snr_sigma_data", Int, nullptr, 27, "Soft Min SNR Sigma Data")
          .export_only()
          .show_if("i_know_what_i_am_doing", "equals", true)
          .help("Data standard deviation assumed by soft Min-SNR."),
      loss_advanced("snr_weight", Float, 1.0, 28, "SNR Weight")
          .honoured_when("studio.objective", "in", nlohmann::json::array({"vp_epsilon", "vp_v"}))
          .min(0.0)
          .show_if("i_know_what_i_am_doing", "equals", true)
          .help("Extra multiplier on the SNR-based loss weights."),
      loss_advanced("diff2flow_loss", Bool, false, 28, "Train With Flow Loss")
          .export_only()
          .enable_if("diff2flow_enabled", "equals", true)
          .help("Train against the flow-matching target produced by the Diff2Flow bridge."),
      loss_advanced("scheduled_sampling_max_step_offset", Int, 0, 29, "Scheduled Sampling Max Offset")
          .export_only()
          .min(0)
          .help("Largest number of steps to roll the model forward when building its own noisy inputs (0 disables "
                "scheduled sampling)."),
      loss_advanced("scheduled_sampling_strategy", Choice, "uniform", 30, "Scheduled Sampling Strategy")
          .export_only()
          .choices({"uniform", "biased_early", "biased_late"})
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("How the roll-out offset is drawn between 0 and the maximum."),
      loss_advanced("scheduled_sampling_probability", Float, 0.0, 31, "Scheduled Sampling Probability")
          .export_only()
          .min(0.0)
          .max(1.0)
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Fixed chance per sample of using a self-generated input."),
      loss_advanced("scheduled_sampling_prob_start", Float, 0.0, 32, "Scheduled Sampling Prob (Start)")
          .export_only()
          .min(0.0)
          .max(1.0)
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Chance of a self-generated input at the start of the ramp."),
      loss_advanced("scheduled_sampling_prob_end", Float, 0.5, 33, "Scheduled Sampling Prob (End)")
          .export_only()
          .min(0.0)
          .max(1.0)
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Chance of a self-generated input at the end of the ramp."),
      loss_advanced("scheduled_sampling_ramp_steps", Int, 0, 34, "Scheduled Sampling Ramp Steps")
          .export_only()
          .min(0)
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Steps over which that chance moves from its start to its end value."),
      loss_advanced("scheduled_sampling_start_step", Int, 0, 35, "Scheduled Sampling Start Step")
          .export_only()
          .min(0)
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Training step at which scheduled sampling begins."),
      loss_advanced("scheduled_sampling_ramp_shape", Choice, "linear", 36, "Scheduled Sampling Ramp Shape")
          .export_only()
          .choices({"linear", "cosine"})
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Shape of the ramp between the start and end chance."),
      loss_advanced("scheduled_sampling_sampler", Choice, "unipc", 37, "Scheduled Sampling Solver")
          .export_only()
          .choices({"unipc", "euler", "dpm"})
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Solver used to roll the model forward when it builds its own noisy inputs."),
      loss_advanced("scheduled_sampling_order", Int, 2, 38, "Scheduled Sampling Solver Order")
          .export_only()
          .min(1)
          .max(9)
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Order of that roll-out solver (higher: more accurate, more model calls)."),
      loss_advanced("scheduled_sampling_reflexflow", Bool, nullptr, 39, "Enable ReflexFlow Enhancements")
          .export_only()
          .show_if("scheduled_sampling_max_step_offset", "greater_than", 0)
          .help("Add the ReflexFlow corrections to scheduled sampling."),
      loss_advanced("scheduled_sampling_reflexflow_alpha", Float, 1.0, 40, "ReflexFlow FC Alpha")
          .export_only()
          .show_if("scheduled_sampling_reflexflow", "equals", true)
          .help("Strength of ReflexFlow's frequency compensation in scheduled sampling."),
      loss_advanced("scheduled_sampling_reflexflow_beta1", Float, 10.0, 41, "ReflexFlow ADR Weight")
          .export_only()
          .show_if("scheduled_sampling_reflexflow", "equals", true)
          .help("Weight of ReflexFlow's anti-drift term, which pulls self-generated inputs back to the data."),
      loss_advanced("scheduled_sampling_reflexflow_beta2", Float, 1.0, 42, "ReflexFlow FC Weight")
          .export_only()
          .show_if("scheduled_sampling_reflexflow", "equals", true)
          .help("Weight of ReflexFlow's frequency-compensation term."),
  };
}

}  // namespace repa::config::detail
