// A small builder so that each option reads as one declaration:
//   Declare("crepa_lambda", OptionType::Float, 0.5).at(kTraining, kLoss, "", 10).label("CREPA Weight")...
// Internal to core/config.
#pragma once
#include <utility>

#include "core/config/registry.h"

namespace repa::config::detail {

class Declare {
 public:
  Declare(std::string key, OptionType type, nlohmann::json default_value = nullptr) {
    spec_.key = std::move(key);
    spec_.type = type;
    spec_.default_value = std::move(default_value);
  }
  Declare& at(std::string tab, std::string section, std::string subsection, double order) {
    spec_.tab = std::move(tab);
    spec_.section = std::move(section);
    spec_.subsection = std::move(subsection);
    spec_.order = order;
    return *this;
  }
  Declare& label(std::string text) { return spec_.label = std::move(text), *this; }
  Declare& help(std::string text) { return spec_.help = std::move(text), *this; }
  Declare& min(double value) { return spec_.min = value, *this; }
  Declare& max(double value) { return spec_.max = value, *this; }
  Declare& choices(std::vector<nlohmann::json> values) { return spec_.choices = std::move(values), *this; }
  Declare& show_if(std::string field, std::string op, nlohmann::json value) {
    spec_.visible_when.push_back({std::move(field), std::move(op), std::move(value), "show"});
    return *this;
  }
  Declare& enable_if(std::string field, std::string op, nlohmann::json value) {
    spec_.visible_when.push_back({std::move(field), std::move(op), std::move(value), "enable"});
    return *this;
  }
  Declare& alias(std::string name) { return spec_.aliases.push_back(std::move(name)), *this; }
  Declare& studio_only() { return spec_.simpletuner = false, *this; }
  Declare& range_only_when_visible() { return spec_.range_only_when_visible = true, *this; }
  // What the studio's trainer does with the option (registry.h, TrainerSupport); Honoured unless declared.
  Declare& export_only() { return spec_.trainer = TrainerSupport::ExportOnly, *this; }
  Declare& refused_by_trainer(std::string what_instead) {
    spec_.trainer = TrainerSupport::Refused;
    return spec_.refusal = std::move(what_instead), *this;
  }
  Declare& honoured_when(std::string field, std::string op, nlohmann::json value) {
    spec_.trainer = TrainerSupport::Conditional;
    spec_.honoured_when.push_back({std::move(field), std::move(op), std::move(value), "show"});
    return *this;
  }
  operator OptionSpec() const { return spec_; }  // NOLINT: lets a list of declarations build a vector

 private:
  OptionSpec spec_;
};

// Each file declares one part of the registry.
std::vector<OptionSpec> loss_options();      // options_loss.cpp: tab training, section loss_functions
std::vector<OptionSpec> training_options();  // options_training.cpp: the run settings the trainer reads
std::vector<OptionSpec> studio_options();    // options_studio.cpp: the "studio" object
std::vector<OptionSpec> noise_options();     // options_noise.cpp: VP noise, timestep bias, prediction type

}  // namespace repa::config::detail
