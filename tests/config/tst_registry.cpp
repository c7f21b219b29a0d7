// The option registry: lookups, visibility, SimpleTuner's value conventions, layering, and validation that
// reports every problem at once with key, value and what was expected.
#include <doctest/doctest.h>

#include <set>

#include "core/base/error.h"
#include "core/config/export.h"
#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/config/values.h"
#include "tests/test_support.h"

using nlohmann::json;
using namespace repa::config;

namespace {

std::string problems_text(const std::vector<Problem>& problems) {
  return format_problems(problems, "test");
}

bool mentions(const std::vector<Problem>& problems, const std::string& key, const std::string& fragment) {
  for (const auto& problem : problems)
    if (problem.key == key && problem.message.find(fragment) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("find_option accepts names, aliases and a leading --") {
  REQUIRE(find_option("crepa_lambda") != nullptr);
  CHECK(find_option("--crepa_lambda") == find_option("crepa_lambda"));
  CHECK(find_option("validation_steps")->key == "validation_step_interval");
  CHECK(find_option("--checkpointing_steps")->key == "checkpoint_step_interval");
  CHECK(find_option("studio.sit_size")->simpletuner == false);
  CHECK(find_option("crepa_lamda") == nullptr);
}

TEST_CASE("every key is declared once, with a label and help text") {
  std::set<std::string> keys;
  for (const auto& spec : registry()) {
    CHECK_MESSAGE(keys.insert(spec.key).second, spec.key);
    CHECK_MESSAGE(!spec.label.empty(), spec.key);
    CHECK_MESSAGE(!spec.help.empty(), spec.key);
    CHECK_MESSAGE(has_declared_type(spec, spec.default_value), spec.key);
    CHECK_MESSAGE(spec.simpletuner == (spec.key.rfind("studio.", 0) != 0), spec.key);
  }
  const auto defaults = default_config();
  CHECK(defaults["crepa_lambda"] == 0.5);
  CHECK(defaults["crepa_block_index"] == 8);
  CHECK(defaults["studio"]["projector"] == "layernorm_linear");
  CHECK(defaults["studio"]["latent_scaling_factor"] == 0.18215);
  CHECK(validate(defaults).empty());
}

TEST_CASE("visibility follows SimpleTuner's rules") {
  auto config = default_config();
  const auto& power = *find_option("crepa_power");
  CHECK_FALSE(is_visible(power, config));
  config["crepa_enabled"] = true;
  CHECK_FALSE(is_visible(power, config));
  config["crepa_scheduler"] = "polynomial";
  CHECK(is_visible(power, config));

  const auto& decay = *find_option("crepa_similarity_ema_decay");  // is_set
  CHECK_FALSE(is_visible(decay, config));
  config["crepa_similarity_threshold"] = 0.9;
  CHECK(is_visible(decay, config));

  const auto& soft = *find_option("use_soft_min_snr");  // greater_than 0
  CHECK_FALSE(is_visible(soft, config));
  config["snr_gamma"] = 5;
  CHECK(is_visible(soft, config));

  const auto& flow_loss = *find_option("diff2flow_loss");  // an "enable" rule: shown, greyed out
  CHECK(is_visible(flow_loss, config));
  CHECK_FALSE(is_enabled(flow_loss, config));
  config["diff2flow_enabled"] = true;
  CHECK(is_enabled(flow_loss, config));

  const auto& beta1 = *find_option("adam_beta1");  // optimizer in a list
  CHECK(is_visible(beta1, config));
  config["optimizer"] = "optimi-lion";
  CHECK_FALSE(is_visible(beta1, config));

  // twinflow_enabled needs distillation_method unset: a key only SimpleTuner knows reads its default.
  CHECK(is_visible(*find_option("twinflow_enabled"), config));
  config["distillation_method"] = "lcm";
  CHECK_FALSE(is_visible(*find_option("twinflow_enabled"), config));

  const auto& depth = *find_option("studio.depth");
  CHECK_FALSE(is_visible(depth, config));
  config["studio"]["sit_size"] = "custom";
  CHECK(is_visible(depth, config));
}

TEST_CASE("values parse as SimpleTuner's parser would") {
  const auto& lr = *find_option("learning_rate");
  CHECK(parse_value(lr, "1e-4").value == 1e-4);
  CHECK(parse_value(lr, " 2.5 ").value == 2.5);
  CHECK(parse_value(lr, 3).value.is_number_float());
  CHECK_FALSE(parse_value(lr, "1e-4x").error.empty());
  CHECK_FALSE(parse_value(lr, "0x10").error.empty());
  CHECK_FALSE(parse_value(lr, nullptr).given);

  const auto& steps = *find_option("max_train_steps");
  CHECK(parse_value(steps, "1_000").value == 1000);
  CHECK(parse_value(steps, 200.0).value.is_number_integer());
  CHECK(parse_value(steps, "-3").value == -3);
  CHECK(parse_value(steps, "1.5").error.find("is not a whole number") != std::string::npos);
  CHECK_FALSE(parse_value(steps, "").given);

  const auto& ema = *find_option("use_ema");
  CHECK(parse_value(ema, "false").value == false);
  CHECK(parse_value(ema, "True").value == true);
  CHECK(parse_value(ema, "on").value == true);
  CHECK(parse_value(ema, 0).value == false);
  CHECK(parse_value(ema, "maybe").error == "\"maybe\" is not true or false");

  const auto& kernel = *find_option("irepa_projector_kernel_size");  // choices are numbers
  CHECK(parse_value(kernel, "5").value == 5);
  CHECK(parse_value(kernel, 7).value == 7);
  CHECK_FALSE(parse_value(kernel, 4).error.empty());

  const auto& scheduler = *find_option("crepa_scheduler");
  CHECK(parse_value(scheduler, "cosinus").error.find("did you mean \"cosine\"") != std::string::npos);

  const auto& encoder = *find_option("crepa_encoder");  // text: a number becomes its text
  REQUIRE(encoder.type == OptionType::String);
  CHECK(parse_value(encoder, 1024).value == "1024");

  const auto& weights = *find_option("flow_cubic_schedule_weights");
  CHECK(parse_value(weights, "[1, 2, 3]").value == json::array({1, 2, 3}));
  CHECK_FALSE(parse_value(weights, "[1, 2").error.empty());
}

TEST_CASE("layers: defaults < preset < file < --set, and null keeps the layer below") {
  const json file = {{"crepa_lambda", 0.25}, {"crepa_block_index", nullptr}, {"--learning_rate", "3e-4"}};
  auto report = load_config(file, "flux", {"crepa_encoder_image_size=224", "studio.threads=3"});
  INFO(problems_text(report.problems));
  REQUIRE(report.problems.empty());
  const auto& config = report.config;
  CHECK(config["model_family"] == "flux");           // preset
  CHECK(config["crepa_block_index"] == 8);           // preset, file's null does not reset it
  CHECK(config["crepa_lambda"] == 0.25);             // file over preset
  CHECK(config["learning_rate"] == 3e-4);            // "--" stripped, text parsed
  CHECK(config["crepa_encoder_image_size"] == 224);  // --set over preset (518)
  CHECK(config["studio"]["threads"] == 3);
  CHECK(config["crepa_power"] == 1.0);  // default

  const auto resolved =
      resolve_json({{"studio", {{"sit_size", "L"}}}}, "", {"crepa_enabled=true", "crepa_lambda=0.75"});
  CHECK(resolved["crepa_enabled"] == true);
  CHECK(resolved["crepa_lambda"] == 0.75);
  CHECK(resolved["studio"]["sit_size"] == "L");
}

TEST_CASE("keys SimpleTuner registers but the studio does not use are kept unchanged") {
  const json file = {{"init_lora_step", 16}, {"--hub_model_id", "me/model"}, {"validation_steps", "50"}};
  auto report = load_config(file, "", {});
  REQUIRE(report.problems.empty());
  CHECK(report.config["init_lora_step"] == 16);
  CHECK(report.config["hub_model_id"] == "me/model");
  CHECK(report.config["validation_step_interval"] == 50);
  CHECK_FALSE(report.config.contains("validation_steps"));
  CHECK(ignored_simpletuner_keys(report.config) == std::vector<std::string>{"hub_model_id", "init_lora_step"});
  bool told = false;
  for (const auto& note : report.notes)
    told |= note == "2 SimpleTuner options the studio does not use, kept for export: hub_model_id, init_lora_step";
  CHECK(told);
}

TEST_CASE("unknown keys are errors with a suggestion") {
  auto report = load_config({{"crepa_lamda", 0.5}, {"studio", {{"sit_sise", "B"}}}, {"zzzzzzzzzz", 1}}, "", {});
  CHECK(mentions(report.problems, "crepa_lamda", "unknown option (did you mean \"crepa_lambda\"?)"));
  CHECK(mentions(report.problems, "studio.sit_sise", "did you mean \"sit_size\"?"));
  CHECK(mentions(report.problems, "zzzzzzzzzz", "unknown option"));
  CHECK_THROWS_AS(resolve_json({{"crepa_lamda", 0.5}}), repa::InputError);
  CHECK_THROWS_WITH_AS(resolve_json({}, "flx"), doctest::Contains("did you mean \"flux\""), repa::InputError);
}

TEST_CASE("a config with five different mistakes reports all five") {
  const json file = {
      {"crepa_lambda", -0.5},        // out of range
      {"loss_type", "l3"},           // unknown choice
      {"train_batch_size", "four"},  // wrong type
      {"learning_rat", 1e-4},        // unknown key
      {"model_family", "sdxl"},      // conflict: REPA on a UNet
      {"crepa_enabled", true},
  };
  const auto report = load_config(file, "", {});
  INFO(problems_text(report.problems));
  CHECK(report.problems.size() == 5);
  CHECK(mentions(report.problems, "crepa_lambda", "-0.5 is below the minimum 0"));
  CHECK(mentions(report.problems, "loss_type", "\"l3\" is not one of l2, huber, smooth_l1"));
  CHECK(mentions(report.problems, "train_batch_size", "\"four\" is not a whole number"));
  CHECK(mentions(report.problems, "learning_rat", "did you mean \"learning_rate\"?"));
  CHECK(mentions(report.problems, "crepa_enabled", "use urepa_enabled"));
  try {
    resolve_json(file);
    FAIL("expected InputError");
  } catch (const repa::InputError& e) {
    const std::string message = e.what();
    CHECK(message.find("5 problems") == 0);
    for (const char* key : {"crepa_lambda", "loss_type", "train_batch_size", "learning_rat", "crepa_enabled"})
      CHECK(message.find(std::string("\n  ") + key + ": ") != std::string::npos);
  }
}

TEST_CASE("conflicts: U-REPA on a transformer, legacy CREPA flags, polynomial power") {
  auto problems = load_config({{"model_family", "flux"}, {"urepa_enabled", true}}, "", {}).problems;
  CHECK(mentions(problems, "urepa_enabled", "use crepa_enabled"));
  problems = load_config({{"urepa_enabled", true}, {"studio", {{"architecture", "unet2d"}}}}, "", {}).problems;
  CHECK(problems.empty());
  problems = load_config({{"urepa_enabled", true}}, "", {}).problems;  // default backbone is SiT
  CHECK(mentions(problems, "urepa_enabled", "studio.architecture \"sit\" is a transformer"));

  problems = load_config({{"crepa_enabled", true}, {"crepa_use_backbone_features", true}}, "", {}).problems;
  CHECK(mentions(problems, "crepa_use_backbone_features", "set crepa_feature_source to \"backbone\""));
  problems = load_config(
                 {{"crepa_enabled", true}, {"crepa_use_backbone_features", true}, {"crepa_feature_source", "backbone"}},
                 "", {})
                 .problems;
  // The legacy flag agrees; what is left is the studio's trainer refusing a backbone teacher for a native run.
  REQUIRE(problems.size() == 2);
  CHECK(mentions(problems, "crepa_use_backbone_features", "a native run is refused"));
  CHECK(mentions(problems, "crepa_feature_source", "a native run is refused"));
  for (const auto& problem : problems) CHECK(problem.severity == Severity::RunError);
  problems =
      load_config({{"crepa_enabled", true}, {"crepa_self_flow", true}, {"crepa_feature_source", "backbone"}}, "", {})
          .problems;
  CHECK(mentions(problems, "crepa_self_flow", "set crepa_feature_source to \"self_flow\""));
  problems =
      load_config({{"crepa_enabled", true}, {"crepa_self_flow", true}, {"crepa_use_backbone_features", true}}, "", {})
          .problems;
  CHECK(mentions(problems, "crepa_self_flow", "exclude each other"));

  problems = load_config({{"crepa_power", 2.0}, {"crepa_scheduler", "cosine"}}, "", {}).problems;
  CHECK(mentions(problems, "crepa_power", "only applies to crepa_scheduler \"polynomial\""));
  problems = load_config({{"urepa_power", 2.0}}, "", {}).problems;
  CHECK(mentions(problems, "urepa_power", "\"constant\""));
  CHECK(load_config({{"crepa_power", 2.0}, {"crepa_scheduler", "polynomial"}}, "", {}).problems.empty());

  // xm_candidate_count's minimum of 2 holds only while XM is on (its default is 1).
  CHECK(load_config({}, "", {}).problems.empty());
  CHECK(mentions(load_config({{"xm_enabled", true}}, "", {}).problems, "xm_candidate_count", "below the minimum 2"));
}

TEST_CASE("validate() checks a config built elsewhere (the GUI) the same way") {
  auto config = default_config();
  config["crepa_block_index"] = 2.5;
  config["studio"]["projector"] = "transformer";
  config["studio"]["colour"] = "red";
  config["not_an_option"] = 1;
  const auto problems = validate(config);
  CHECK(mentions(problems, "crepa_block_index", "2.5 is not a whole number"));
  CHECK(mentions(problems, "studio.projector", "is not one of layernorm_linear, mlp, conv"));
  CHECK(mentions(problems, "studio.colour", "unknown studio option"));
  CHECK(mentions(problems, "not_an_option", "unknown option"));
  CHECK(problems.size() == 4);
}

TEST_CASE("paths are checked only on request") {
  repa::test::ScratchDir dir;
  const json file = {{"output_dir", dir.file("runs/new")},
                     {"studio", {{"dataset_dir", dir.file("missing")}, {"encoder_weights", dir.path().string()}}}};
  const auto resolved = resolve_json(file);  // validates without touching the disk
  const auto problems = check_paths(resolved);
  CHECK(mentions(problems, "studio.dataset_dir", "does not exist"));
  CHECK(mentions(problems, "studio.encoder_weights", "is a folder, expected a file"));
  CHECK(problems.size() == 2);  // output_dir can be created
  repa::test::write_bytes(dir.file("blocker"), "x");
  CHECK(mentions(check_paths(resolve_json({{"output_dir", dir.file("blocker/run")}})), "output_dir",
                 "cannot be created"));
}

TEST_CASE("one layer naming an option under two spellings is a problem") {
  const auto problems = load_config({{"validation_steps", 10}, {"validation_step_interval", 20}}, "", {}).problems;
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].key == "validation_step_interval");
  CHECK(problems[0].message.find("given twice in one layer") == 0);
  // Different layers may: the file overrides the preset, --set overrides the file.
  CHECK(resolve_json({{"validation_steps", 10}}, "", {"validation_step_interval=20"})["validation_step_interval"] ==
        20);
}
