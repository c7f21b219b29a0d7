// validate(): every problem of a resolved config at once — types, ranges, choices, unknown keys — and the
// conflicts SimpleTuner would only notice late, or never (REPA on a UNet does nothing there).
#include <set>

#include "core/config/alignment_grid.h"
#include "core/config/registry.h"
#include "core/config/simpletuner_fields.h"
#include "core/config/simpletuner_loader.h"
#include "core/config/suggest.h"
#include "core/config/trainer_support.h"
#include "core/config/values.h"

namespace repa::config {
namespace {

// SimpleTuner's U-REPA families (urepa_enabled's model_specific list): UNet backbones with a mid block.
const std::set<std::string> kUnetFamilies = {"sdxl", "sd1x", "sd2x", "kolors"};

std::string number_text(double value) {
  nlohmann::json number = value;
  if (value == static_cast<double>(static_cast<long long>(value))) number = static_cast<long long>(value);
  return number.dump();
}

void check_option(const OptionSpec& spec, const nlohmann::json& config, std::vector<Problem>& problems) {
  const nlohmann::json value = config_value(config, spec.key);
  if (!has_declared_type(spec, value)) {
    std::string message = describe_value(value) + " is not " + expected_type(spec);
    if (spec.type == OptionType::Choice && value.is_string()) {
      std::vector<std::string> names;
      for (const auto& choice : spec.choices)
        if (!choice.is_null()) names.push_back(choice.is_string() ? choice.get<std::string>() : choice.dump());
      message += did_you_mean(value.get<std::string>(), names);
    }
    problems.push_back({spec.key, message});
    return;
  }
  if (!value.is_number() || (spec.range_only_when_visible && !is_visible(spec, config))) return;
  const double number = value.get<double>();
  if (spec.min && number < *spec.min)
    problems.push_back({spec.key, describe_value(value) + " is below the minimum " + number_text(*spec.min)});
  if (spec.max && number > *spec.max)
    problems.push_back({spec.key, describe_value(value) + " is above the maximum " + number_text(*spec.max)});
}

bool enabled(const nlohmann::json& config, const std::string& key) {
  return config_value(config, key) == true;
}

// Which backbone the config trains: SimpleTuner's family when one is named, else the studio's architecture.
bool is_unet(const nlohmann::json& config, std::string* what) {
  const auto family = config_value(config, "model_family");
  if (family.is_string()) {
    *what = "model_family \"" + family.get<std::string>() + "\"";
    return kUnetFamilies.count(family.get<std::string>()) > 0;
  }
  const auto architecture = config_value(config, "studio.architecture");
  *what = "studio.architecture " + describe_value(architecture);
  return architecture != "sit";
}

void check_conflicts(const nlohmann::json& config, std::vector<Problem>& problems) {
  std::string backbone;
  const bool unet = is_unet(config, &backbone);
  if (enabled(config, "crepa_enabled") && unet)
    problems.push_back(
        {"crepa_enabled", "true, but " + backbone +
                              " is a UNet: REPA taps a transformer block and SimpleTuner would "
                              "silently skip it; use urepa_enabled (U-REPA, aligns the UNet's mid block) instead"});
  if (enabled(config, "urepa_enabled") && !unet)
    problems.push_back({"urepa_enabled", "true, but " + backbone +
                                             " is a transformer: U-REPA needs a UNet mid block and SimpleTuner "
                                             "would silently skip it; use crepa_enabled (REPA) instead"});

  if (enabled(config, "crepa_enabled")) {
    const bool backbone_flag = enabled(config, "crepa_use_backbone_features");
    const bool self_flow_flag = enabled(config, "crepa_self_flow");
    const auto source = config_value(config, "crepa_feature_source");
    if (backbone_flag && self_flow_flag)
      problems.push_back({"crepa_self_flow",
                          "true together with crepa_use_backbone_features: the legacy flags exclude each other; set "
                          "crepa_feature_source instead"});
    else if (backbone_flag && source != "backbone")
      problems.push_back(
          {"crepa_use_backbone_features", "true, but crepa_feature_source is " + describe_value(source) +
                                              ": set crepa_feature_source to \"backbone\" and drop the legacy flag"});
    else if (self_flow_flag && source != "self_flow")
      problems.push_back(
          {"crepa_self_flow", "true, but crepa_feature_source is " + describe_value(source) +
                                  ": set crepa_feature_source to \"self_flow\" and drop the legacy flag"});
  }

  for (const std::string prefix : {"crepa", "urepa"}) {
    const auto power = config_value(config, prefix + "_power");
    const auto scheduler = config_value(config, prefix + "_scheduler");
    const auto* spec = find_option(prefix + "_power");
    if (power.is_number() && spec && power != spec->default_value && scheduler != "polynomial")
      problems.push_back({prefix + "_power", describe_value(power) + " only applies to " + prefix +
                                                 "_scheduler \"polynomial\", but the scheduler is " +
                                                 describe_value(scheduler)});
  }

  // SimpleTuner's teacher input decodes the clean latents; without a VAE there are none to decode.
  const auto vae_path = config_value(config, "studio.vae_path");
  if (config_value(config, "studio.teacher_input") == "vae_decode" && (!vae_path.is_string() || vae_path == ""))
    problems.push_back({"studio.teacher_input",
                        "\"vae_decode\" decodes the clean latents with the VAE, but studio.vae_path is empty (a "
                        "pixel-space run): set studio.vae_path or use \"pixels\""});

  if (config_value(config, "studio.architecture") == "sit" && config_value(config, "studio.sit_size") == "custom") {
    const auto hidden = config_value(config, "studio.hidden_size");
    const auto heads = config_value(config, "studio.num_heads");
    if (hidden.is_number_integer() && heads.is_number_integer() && heads.get<long long>() > 0 &&
        hidden.get<long long>() % heads.get<long long>() != 0)
      problems.push_back({"studio.hidden_size",
                          describe_value(hidden) + " is not a multiple of studio.num_heads " + describe_value(heads)});
  }
}

// Options in use that the studio's trainer ignores: warnings, or errors for a native run (not for an export)
// where the run would train something other than what the config asks for.
void check_trainer_support(const nlohmann::json& config, std::vector<Problem>& problems) {
  for (const auto& option : ignored_by_trainer(config))
    problems.push_back({option.key, describe_value(option.value) + ": " + option.reason,
                        option.refused ? Severity::RunError : Severity::Warning});
}

// The run folder is <output_dir>/<run_name>: a name with a separator or a dot entry would write elsewhere.
void check_run_name(const nlohmann::json& config, std::vector<Problem>& problems) {
  const auto name = config_value(config, "studio.run_name");
  if (!name.is_string()) return;
  const auto& text = name.get_ref<const std::string&>();
  if (text.empty()) return;  // a timestamped name
  std::string why;
  if (text == "." || text == "..")
    why = "is a relative folder, not a name";
  else if (text.find('/') != std::string::npos)
    why = "holds a path separator";
  else if (text.find('\0') != std::string::npos)
    why = "holds a NUL byte";
  else if (text.size() > 255)
    why = "is longer than a file name may be (255 bytes)";
  if (!why.empty())
    problems.push_back(
        {"studio.run_name",
         describe_value(name) + " " + why + ": a run name is one folder name inside output_dir (no '/', '.', '..')"});
}

// SimpleTuner sets no maximum; the trainer counts steps in int64 and names checkpoints by step, so a count
// past any possible run is a typo (or a hostile value) to refuse now rather than overflow later.
void check_step_count(const nlohmann::json& config, std::vector<Problem>& problems) {
  constexpr double kMaxSteps = 1e12;  // a trillion steps: centuries at a millisecond a step
  const auto steps = config_value(config, "max_train_steps");
  if (steps.is_number() && steps.get<double>() > kMaxSteps)
    problems.push_back({"max_train_steps", describe_value(steps) +
                                               " is above 1000000000000 steps, more than any run "
                                               "can take; give the number of optimizer steps to train"});
}

}  // namespace

std::vector<Problem> validate(const nlohmann::json& config) {
  std::vector<Problem> problems;
  if (!config.is_object()) return {{"", "a config must be a JSON object, got " + describe_value(config)}};
  for (const auto& spec : registry()) check_option(spec, config, problems);
  for (const auto& [key, value] : config.items()) {
    if (key == "studio") {
      if (!value.is_object()) {
        problems.push_back({"studio", "must be an object, got " + describe_value(value)});
        continue;
      }
      for (const auto& [name, ignored] : value.items())
        if (find_option("studio." + name) == nullptr) problems.push_back({"studio." + name, "unknown studio option"});
    } else if (find_option(key) == nullptr && find_simpletuner_field(key) == nullptr) {
      const std::string dropped = dropped_by_simpletuner_loader(key, value);
      if (dropped.empty())
        problems.push_back({key, "unknown option"});
      else
        problems.push_back({key, "unknown option, ignored: " + dropped, Severity::Warning});
    }
  }
  check_conflicts(config, problems);
  check_run_name(config, problems);
  check_step_count(config, problems);
  check_trainer_support(config, problems);
  for (auto& warning : check_alignment_grid(config)) problems.push_back(std::move(warning));
  return problems;
}

}  // namespace repa::config
