// How the VP families (SD 1.x, 2.x, XL, PixArt) noise their latents and pick timesteps, under SimpleTuner's names:
// "Noise settings" and the timestep-bias part of "Training schedule" (tab training), and the prediction type and
// zero-terminal-SNR betas of the model's advanced architecture settings. Flow families ignore them, as SimpleTuner
// does (core/diffusion/vp_timesteps.h).
#include "core/config/option_builder.h"

namespace repa::config::detail {
namespace {

using T = OptionType;
constexpr auto Bool = T::Bool;
constexpr auto Int = T::Int;
constexpr auto Float = T::Float;
constexpr auto Choice = T::Choice;

const nlohmann::json& vp_objectives() {
  static const nlohmann::json list = nlohmann::json::array({"vp_epsilon", "vp_v"});
  return list;
}

}  // namespace

std::vector<OptionSpec> noise_options() {
  return {
      Declare("noise_offset", Float, 0.1)
          .at("training", "noise_settings", "", 1)
          .label("Noise Offset")
          .min(0.0)
          .max(1.0)
          .honoured_when("studio.objective", "in", vp_objectives())
          .help("With Offset Noise on: the strength of a per-channel constant added to the noise, which lets the "
                "model learn very dark and very bright images. Ignored by flow-matching families."),
      Declare("noise_offset_probability", Float, 0.25)
          .at("training", "noise_settings", "", 2)
          .label("Noise Offset Probability")
          .min(0.0)
          .max(1.0)
          .honoured_when("studio.objective", "in", vp_objectives())
          .help("Share of batches that get the noise offset (one draw per batch, as SimpleTuner does)."),
      Declare("input_perturbation", Float, 0.0)
          .at("training", "noise_settings", "", 3)
          .label("Input Perturbation")
          .min(0.0)
          .max(1.0)
          .help("Adds this much extra noise to the model's noisy input only (the target keeps the original noise): "
                "a cheap regulariser against exposure bias. 0 turns it off; 0.1 is typical."),
      Declare("input_perturbation_steps", Int, 0)
          .at("training", "noise_settings", "", 4)
          .label("Input Perturbation Steps")
          .min(0)
          .help("Fade the input perturbation linearly to zero over this many steps; 0 keeps it for the whole run."),
      Declare("offset_noise", Bool, false)
          .at("training", "noise_settings", "", 5)
          .label("Offset Noise")
          .honoured_when("studio.objective", "in", vp_objectives())
          .help("Turn on the noise offset (Noise Offset, Noise Offset Probability)."),
      Declare("timestep_bias_strategy", Choice, nullptr)
          .at("training", "training_schedule", "advanced", 41)
          .label("Timestep Bias Strategy")
          .choices({"earlier", "later", "range", "none"})
          .honoured_when("studio.objective", "in", vp_objectives())
          .help("Weight the training timesteps: 'earlier' (low noise, fine detail) or 'later' (high noise, "
                "composition) multiplies the weight of that portion of the schedule; 'range' the steps between "
                "begin and end."),
      Declare("timestep_bias_begin", Int, 0)
          .at("training", "training_schedule", "advanced", 42)
          .label("Timestep Bias Begin")
          .min(0)
          .max(1000)
          .show_if("timestep_bias_strategy", "not_equals", "none")
          .help("First timestep of the biased range (strategy 'range')."),
      Declare("timestep_bias_end", Int, 1000)
          .at("training", "training_schedule", "advanced", 43)
          .label("Timestep Bias End")
          .min(0)
          .max(1000)
          .show_if("timestep_bias_strategy", "not_equals", "none")
          .help("End of the biased range, exclusive (strategy 'range')."),
      Declare("timestep_bias_multiplier", Float, 1.0)
          .at("training", "training_schedule", "advanced", 44)
          .label("Timestep Bias Multiplier")
          .min(0.0)
          .show_if("timestep_bias_strategy", "not_equals", "none")
          .help("How much more often the biased timesteps are drawn; must be positive (use strategy 'none' to turn "
                "the bias off)."),
      Declare("timestep_bias_portion", Float, 0.25)
          .at("training", "training_schedule", "advanced", 45)
          .label("Timestep Bias Portion")
          .min(0.0)
          .max(1.0)
          .show_if("timestep_bias_strategy", "not_equals", "none")
          .help("The share of the schedule 'earlier' and 'later' bias."),
      Declare("disable_segmented_timestep_sampling", Bool, false)
          .at("training", "training_schedule", "advanced", 46)
          .label("Disable Segmented Timestep Sampling")
          .honoured_when("studio.objective", "in", vp_objectives())
          .help("By default a batch takes one timestep from each of as many equal segments of the schedule as it "
                "has samples (even coverage); on: every sample draws from the whole schedule independently."),
      Declare("prediction_type", Choice, nullptr)
          .at("model", "architecture", "advanced", 10)
          .label("Prediction Type")
          .show_if("i_know_what_i_am_doing", "equals", true)
          .choices({nullptr, "epsilon", "v_prediction", "sample", "flow_matching"})
          .help("What the model predicts, overriding the family's own (SD 2.x: v_prediction; SD 1.x, SDXL, PixArt: "
                "epsilon). The studio trains epsilon and v_prediction; flow families always predict the flow."),
      Declare("rescale_betas_zero_snr", Bool, false)
          .at("model", "architecture", "advanced", 21)
          .label("Rescale Betas Zero SNR")
          .help("Rescale the noise schedule so its last step is pure noise (Lin et al. 2023); SD 2.x always trains "
                "this way in SimpleTuner and here."),
  };
}

}  // namespace repa::config::detail
