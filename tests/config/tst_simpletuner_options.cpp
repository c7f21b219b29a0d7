// Every SimpleTuner key of the registry against SimpleTuner's own registry (the copy in
// tests/fixtures/simpletuner/options.json): type, default, choices, range, label, place, order and visibility; the whole loss_functions
// section is declared; and the generated table of all SimpleTuner names matches the file.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>

#include "core/config/registry.h"
#include "core/config/simpletuner_fields.h"
#include "tests/test_support.h"

using nlohmann::json;
using namespace repa::config;

namespace {

const json& simpletuner_options() {
  static const json fields = [] {
    std::ifstream file(repa::test::fixture_path("simpletuner/options.json"));
    REQUIRE(file.good());
    return json::parse(file)["fields"];
  }();
  return fields;
}

const json* field_named(const std::string& name) {
  for (const auto& field : simpletuner_options())
    if (field["name"] == name) return &field;
  return nullptr;
}

// Ranges where the studio deliberately differs from SimpleTuner's web form (its command line checks none).
const std::map<std::string, std::pair<std::optional<double>, std::optional<double>>> kStudioRanges = {
    {"resolution", {8, 4096}},                         // small pixel-space models train at 32 px
    {"train_batch_size", {1, std::nullopt}},           // the REPA paper trains at 256; the form stops at 128
    {"validation_step_interval", {0, std::nullopt}},   // 0 = never, as SimpleTuner's own examples write
    {"minimum_image_size", {0, std::nullopt}},         // 0 = no minimum, as SimpleTuner's own examples write
    {"crepa_encoder_image_size", {14, std::nullopt}},  // one DINOv2 patch; the demo uses 56 px
    {"urepa_encoder_image_size", {14, std::nullopt}},
};

// Selects whose choices SimpleTuner fills at run time; its parser accepts any text for them.
const std::set<std::string> kDynamicChoices = {"optimizer", "model_flavour", "data_backend_config",
                                               "resume_from_checkpoint"};

std::vector<VisibilityRule> expected_rules(const json& field) {
  std::vector<VisibilityRule> rules;
  for (const auto& dependency : field.value("dependencies", json::array())) {
    VisibilityRule rule{dependency["field"], dependency["operator"], dependency["value"], dependency["action"]};
    if (dependency["values"].is_array() && !dependency["values"].empty()) {
      rule.op = "in";
      rule.value = dependency["values"];
    }
    rules.push_back(rule);
  }
  return rules;
}

}  // namespace

TEST_CASE("every SimpleTuner key of the registry matches options.json") {
  int checked = 0;
  for (const auto& spec : registry()) {
    if (!spec.simpletuner) continue;
    CAPTURE(spec.key);
    const json* field = field_named(spec.key);
    REQUIRE_MESSAGE(field != nullptr, (spec.key + " is not in options.json"));
    ++checked;
    CHECK(spec.label == (*field)["ui_label"]);
    CHECK(spec.tab == (*field)["tab"]);
    CHECK(spec.section == (*field)["section"]);
    CHECK(spec.subsection == field->value("subsection", ""));
    CHECK(spec.order == (*field)["order"].get<double>());
    CHECK(spec.default_value == field->value("default_value", json()));

    const std::string field_type = (*field)["field_type"];
    const auto* table = find_simpletuner_field(spec.key);
    REQUIRE(table != nullptr);
    switch (spec.type) {
      case OptionType::Bool:
        CHECK(field_type == "checkbox");
        break;
      case OptionType::Int:
        CHECK((field_type == "number" && table->value_kind == 'i'));
        break;
      case OptionType::Float:
        CHECK((field_type == "number" && table->value_kind == 'f'));
        break;
      case OptionType::Choice:
        CHECK(field_type == "select");
        break;
      case OptionType::Json:
        CHECK(field_type == "text_json");
        break;
      case OptionType::String:
      case OptionType::Path:
        CHECK((field_type == "text" || field_type == "textarea" ||
               (field_type == "select" && kDynamicChoices.count(spec.key))));
        break;
    }
    if (spec.type == OptionType::Choice) CHECK(json(spec.choices) == (*field)["choices"]);

    // options.json keeps rule values without their kind: one value is a minimum, two are minimum and maximum.
    std::vector<double> bounds;
    for (const auto& rule : field->value("validation_rules", json::array()))
      if (rule.contains("value") && rule["value"].is_number()) bounds.push_back(rule["value"]);
    std::optional<double> min = bounds.size() >= 1 ? std::optional<double>(bounds[0]) : std::nullopt;
    std::optional<double> max = bounds.size() >= 2 ? std::optional<double>(bounds[1]) : std::nullopt;
    if (const auto studio = kStudioRanges.find(spec.key); studio != kStudioRanges.end())
      std::tie(min, max) = studio->second;
    CHECK(spec.min == min);
    CHECK(spec.max == max);

    const auto rules = expected_rules(*field);
    REQUIRE(spec.visible_when.size() == rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) {
      CHECK(spec.visible_when[i].field == rules[i].field);
      CHECK(spec.visible_when[i].op == rules[i].op);
      CHECK(spec.visible_when[i].value == rules[i].value);
      CHECK(spec.visible_when[i].action == rules[i].action);
    }
    std::vector<std::string> aliases;
    for (const auto& alias : field->value("aliases", json::array()))
      aliases.push_back(alias.get<std::string>().substr(2));
    CHECK(spec.aliases == aliases);
  }
  CHECK(checked >= 104 + 30);
}

TEST_CASE("the whole loss_functions section and the trainer's settings are declared") {
  int loss_fields = 0;
  for (const auto& field : simpletuner_options()) {
    if (field["tab"] != "training" || field["section"] != "loss_functions") continue;
    ++loss_fields;
    CHECK_MESSAGE(find_option(field["name"]) != nullptr, field["name"].get<std::string>());
  }
  CHECK(loss_fields == 104);
  for (const char* key : {"model_family",
                          "model_flavour",
                          "pretrained_model_name_or_path",
                          "pretrained_vae_model_name_or_path",
                          "output_dir",
                          "resolution",
                          "train_batch_size",
                          "gradient_accumulation_steps",
                          "learning_rate",
                          "lr_scheduler",
                          "lr_warmup_steps",
                          "max_train_steps",
                          "num_train_epochs",
                          "optimizer",
                          "adam_beta1",
                          "adam_beta2",
                          "adam_weight_decay",
                          "adam_epsilon",
                          "max_grad_norm",
                          "mixed_precision",
                          "seed",
                          "checkpoint_step_interval",
                          "checkpoints_total_limit",
                          "resume_from_checkpoint",
                          "use_ema",
                          "ema_decay",
                          "validation_step_interval",
                          "validation_num_inference_steps",
                          "validation_guidance",
                          "gradient_checkpointing",
                          "data_backend_config",
                          "report_to"})
    CHECK_MESSAGE(find_option(key) != nullptr, key);
}

TEST_CASE("the generated table holds every SimpleTuner option with its flags and default") {
  REQUIRE(simpletuner_fields().size() == simpletuner_options().size());
  for (const auto& field : simpletuner_options()) {
    const std::string name = field["name"];
    CAPTURE(name);
    const auto* entry = find_simpletuner_field(name);
    REQUIRE(entry != nullptr);
    CHECK(std::string(entry->name) == name);
    CHECK(std::string(entry->arg_name) == field.value("arg_name", ""));
    CHECK(std::string(entry->field_type) == field["field_type"]);
    CHECK(json::parse(entry->default_json) == field.value("default_value", json()));
    for (const auto& alias : field.value("aliases", json::array())) CHECK(find_simpletuner_field(alias) == entry);
    if (field.contains("arg_name")) CHECK(find_simpletuner_field(field["arg_name"]) == entry);
  }
  // SimpleTuner's parser takes --fuse_qkv_projections as the flag of field fused_qkv_projections.
  CHECK(std::string(find_simpletuner_field("fuse_qkv_projections")->name) == "fused_qkv_projections");
  CHECK(find_simpletuner_field("snr_gamma")->value_kind == 'i');  // its only hint is the integer minimum 0
  CHECK(find_simpletuner_field("mixflow_gamma")->value_kind == 'f');
  CHECK_FALSE(accepted_by_simpletuner_cli(*find_simpletuner_field("configs_dir")));
}
