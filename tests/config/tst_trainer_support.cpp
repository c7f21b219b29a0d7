// Which options the studio's trainer honours: the registry's declarations match what the trainer's sources
// read, "in use" means what trainer_support.h says, and validation reports ignored options as warnings,
// or as errors for a native run (never for an export) where the run would train something else.
#include <doctest/doctest.h>

#include <filesystem>
#include <regex>

#include "core/base/error.h"
#include "core/config/export.h"
#include "core/config/loader.h"
#include "core/config/registry.h"
#include "core/config/trainer_support.h"
#include "tests/test_support.h"

using nlohmann::json;
using namespace repa::config;

namespace {

const OptionSpec& option(const std::string& key) {
  const OptionSpec* spec = find_option(key);
  REQUIRE_MESSAGE(spec != nullptr, key);
  return *spec;
}

std::vector<std::string> ignored_keys(const json& user) {
  std::vector<std::string> keys;
  for (const auto& ignored : ignored_by_trainer(resolve_json(user, "", {}, Purpose::Export)))
    keys.push_back(ignored.key);
  return keys;
}

const Problem* find_problem(const std::vector<Problem>& problems, const std::string& key) {
  for (const auto& problem : problems)
    if (problem.key == key) return &problem;
  return nullptr;
}

// Every source of the trainer and the parts it builds, concatenated.
const std::string& trainer_sources() {
  static const std::string text = [] {
    std::string all;
    for (const char* folder : {"core/train", "core/align", "core/diffusion", "core/encoders", "core/models",
                               "core/data", "core/adapters", "core/text"}) {
      if (!std::filesystem::is_directory(repa::test::source_path(folder))) continue;
      for (const auto& entry : std::filesystem::recursive_directory_iterator(repa::test::source_path(folder)))
        if (entry.path().extension() == ".cpp" || entry.path().extension() == ".h") {
          std::string text = repa::test::read_bytes(entry.path().string());
          // flow_sigmas names mixflow_enabled only to refuse it (MixFlow is not built).
          if (entry.path().stem() == "flow_sigmas")
            for (auto at = text.find("\"mixflow_enabled\""); at != std::string::npos;
                 at = text.find("\"mixflow_enabled\""))
              text.erase(at, 17);
          all += text;
        }
    }
    return all;
  }();
  return text;
}

// A key the trainer reads: written out, or built by CoefficientSchedule from its prefix ("crepa" + "_" + name).
bool read_by_trainer(const std::string& key) {
  if (trainer_sources().find("\"" + key + "\"") != std::string::npos) return true;
  static const std::regex schedule_key("^(crepa|urepa)_(.+)$");
  std::smatch match;
  return std::regex_match(key, match, schedule_key) &&
         trainer_sources().find("key(\"" + match[2].str() + "\")") != std::string::npos;
}

}  // namespace

TEST_CASE("the registry's trainer declarations match what the trainer reads") {
  int export_only = 0, honoured = 0;
  for (const auto& spec : registry()) {
    if (!spec.simpletuner) continue;  // studio settings are the trainer's own
    CAPTURE(spec.key);
    if (spec.trainer == TrainerSupport::ExportOnly || spec.trainer == TrainerSupport::Refused) {
      CHECK_FALSE(read_by_trainer(spec.key));
      ++export_only;
    } else if (spec.trainer == TrainerSupport::Honoured && spec.section == "loss_functions") {
      CHECK(read_by_trainer(spec.key));
      ++honoured;
    } else if (spec.trainer == TrainerSupport::Conditional) {
      CHECK(read_by_trainer(spec.key));  // read, and acted on under its condition
    }
  }
  CHECK(export_only == 62);  // 54 loss functions (3 of them refused) and 8 run settings
  CHECK(honoured == 35);     // loss functions; 6 more are honoured only under a condition
  // The examples.
  for (const char* key :
       {"xm_enabled", "twinflow_enabled", "layersync_enabled", "mixflow_enabled", "diff2flow_enabled",
        "use_soft_min_snr", "masked_loss_probability", "scheduled_sampling_max_step_offset",
        "nextlat_enabled", "internal_guidance_enabled", "crepa_teacher_block_index", "crepa_self_flow_mask_ratio"})
    CHECK_MESSAGE(option(key).trainer == TrainerSupport::ExportOnly, key);
  for (const char* key : {"crepa_feature_source", "crepa_use_backbone_features", "crepa_self_flow"})
    CHECK_MESSAGE(option(key).trainer == TrainerSupport::Refused, key);
  for (const char* key : {"crepa_use_tae", "urepa_use_tae", "crepa_drop_vae_encoder"}) {
    CHECK(option(key).trainer == TrainerSupport::Conditional);
    CHECK(describe_rules(option(key).honoured_when) == "studio.teacher_input is \"vae_decode\"");
  }
  // The flow families (SD3, Flux, Chroma) draw their sigmas from the flow_* options.
  CHECK(option("flow_schedule_shift").trainer == TrainerSupport::Conditional);
  CHECK(describe_rules(option("flow_schedule_shift").honoured_when) == "model_family is one of \"sd3\", \"flux\", \"chroma\"");
  CHECK(option("crepa_lambda").trainer == TrainerSupport::Honoured);
  CHECK(option("crepa_scheduler").trainer == TrainerSupport::Honoured);
  CHECK(option("studio.teacher_input").trainer == TrainerSupport::Honoured);
}

TEST_CASE("in use: the feature is on and the value is not the default") {
  auto config = default_config();
  CHECK_FALSE(in_use(option("xm_enabled"), config));
  config["xm_enabled"] = true;
  CHECK(in_use(option("xm_enabled"), config));
  CHECK_FALSE(in_use(option("xm_candidate_count"), config));  // still its default, 1
  config["xm_candidate_count"] = 4;
  CHECK(in_use(option("xm_candidate_count"), config));
  config["xm_enabled"] = false;  // hidden with its feature off: nothing to ignore
  CHECK_FALSE(in_use(option("xm_candidate_count"), config));

  // Booleans: null and false are both off (scheduled_sampling_reflexflow's default is null).
  config["scheduled_sampling_max_step_offset"] = 2;
  config["scheduled_sampling_reflexflow"] = false;
  CHECK_FALSE(in_use(option("scheduled_sampling_reflexflow"), config));
  config["scheduled_sampling_reflexflow"] = true;
  CHECK(in_use(option("scheduled_sampling_reflexflow"), config));
  // A boolean whose default is true is in use when turned off.
  config["crepa_enabled"] = true;
  config["crepa_normalize_by_frames"] = false;
  CHECK(in_use(option("crepa_normalize_by_frames"), config));
  // Numbers compare by value: 3 is flow_schedule_shift's default 3.0.
  config["flow_schedule_shift"] = 3;
  CHECK_FALSE(in_use(option("flow_schedule_shift"), config));
  config["flow_schedule_shift"] = 1.73;
  CHECK(in_use(option("flow_schedule_shift"), config));
  // An "enable" rule counts too: diff2flow_loss does nothing without diff2flow_enabled.
  config["diff2flow_loss"] = true;
  CHECK_FALSE(in_use(option("diff2flow_loss"), config));
  config["diff2flow_enabled"] = true;
  CHECK(in_use(option("diff2flow_loss"), config));
}

TEST_CASE("XM, TwinFlow, LayerSync and a backbone teacher: reported, a native run refused, the export kept") {
  const json user = {{"crepa_enabled", true},        {"crepa_feature_source", "backbone"}, {"xm_enabled", true},
                     {"xm_candidate_count", 4},      {"twinflow_enabled", true},           {"layersync_enabled", true},
                     {"layersync_student_block", 2}, {"layersync_teacher_block", 6}};
  CHECK(ignored_keys(user) == std::vector<std::string>{"xm_enabled", "xm_candidate_count", "crepa_feature_source",
                                                       "twinflow_enabled", "layersync_enabled",
                                                       "layersync_student_block", "layersync_teacher_block"});
  const auto report = load_config(user, "", {});
  REQUIRE(report.problems.size() == 1);
  CHECK(report.problems[0].key == "crepa_feature_source");
  CHECK(report.problems[0].severity == Severity::RunError);
  CHECK(report.problems[0].message ==
        "\"backbone\": exported to SimpleTuner; not used by the studio's trainer, which takes REPA's teacher from the "
        "vision encoder only (crepa_feature_source \"encoder\"), so a native run is refused");
  int exported_only = 0;
  for (const auto& warning : report.warnings)
    exported_only += warning.message.find(kExportOnlyText) != std::string::npos ? 1 : 0;
  CHECK(exported_only == 6);
  const Problem* xm = find_problem(report.warnings, "xm_enabled");
  REQUIRE(xm != nullptr);
  CHECK(xm->message == "true: exported to SimpleTuner; not used by the studio's trainer");
  CHECK(xm->severity == Severity::Warning);

  CHECK_THROWS_WITH_AS(resolve_json(user), doctest::Contains("crepa_feature_source"), repa::InputError);
  const json resolved = resolve_json(user, "", {}, Purpose::Export);
  repa::test::ScratchDir dir;
  const auto exported = export_simpletuner(resolved, dir.path().string()).config;
  CHECK(exported["crepa_feature_source"] == "backbone");
  CHECK(exported["xm_enabled"] == true);
  CHECK(exported["layersync_teacher_block"] == 6);

  // The same options with their feature off are not reported.
  CHECK(ignored_keys({{"crepa_feature_source", "backbone"}, {"xm_candidate_count", 4}}).empty());
  // An error (not a refusal) still blocks the export.
  CHECK_THROWS_AS(resolve_json({{"crepa_lambda", -1}}, "", {}, Purpose::Export), repa::InputError);
}

TEST_CASE("conditional support: the tiny autoencoder options apply only to a decoded teacher input") {
  json user = {{"crepa_enabled", true}, {"crepa_use_tae", true}, {"crepa_drop_vae_encoder", true}};
  auto report = load_config(user, "", {});
  CHECK(report.problems.empty());
  const Problem* tae = find_problem(report.warnings, "crepa_use_tae");
  REQUIRE(tae != nullptr);
  CHECK(tae->message ==
        "true: exported to SimpleTuner; the studio's trainer uses it only when studio.teacher_input is \"vae_decode\"");
  CHECK(find_problem(report.warnings, "crepa_drop_vae_encoder") != nullptr);

  user["studio"] = {{"teacher_input", "vae_decode"}, {"vae_path", "/models/vae"}};
  report = load_config(user, "", {});
  CHECK(report.problems.empty());
  CHECK(find_problem(report.warnings, "crepa_use_tae") == nullptr);
  CHECK(find_problem(report.warnings, "crepa_drop_vae_encoder") == nullptr);

  // Min-SNR weighting applies to VP objectives only (flow paths take none, as in SimpleTuner).
  CHECK(ignored_keys({{"snr_gamma", 5}}) == std::vector<std::string>{"snr_gamma"});
  CHECK(describe(ignored_by_trainer(resolve_json({{"snr_gamma", 5}}))[0]) ==
        "snr_gamma = 5: exported to SimpleTuner; the studio's trainer uses it only when studio.objective is one of "
        "\"vp_epsilon\", \"vp_v\"");
  CHECK(ignored_keys({{"snr_gamma", 5}, {"studio", {{"objective", "vp_epsilon"}}}}).empty());
  // flow_sigmoid_scale shapes the logit-normal timestep draw only.
  CHECK(ignored_keys({{"flow_sigmoid_scale", 2.0}}) == std::vector<std::string>{"flow_sigmoid_scale"});
  CHECK(ignored_keys({{"flow_sigmoid_scale", 2.0}, {"studio", {{"timestep_sampling", "logit_normal"}}}}).empty());
}

TEST_CASE("the run_started list: key, value, reason, refused") {
  const auto list = to_json(ignored_by_trainer(resolve_json({{"crepa_enabled", true},
                                                             {"crepa_self_flow", true},
                                                             {"crepa_feature_source", "self_flow"},
                                                             {"mixflow_enabled", true}},
                                                            "", {}, Purpose::Export)));
  REQUIRE(list.size() == 3);
  CHECK(list[0]["key"] == "crepa_feature_source");
  CHECK(list[0]["value"] == "self_flow");
  CHECK(list[0]["refused"] == true);
  CHECK(list[1]["key"] == "crepa_self_flow");
  CHECK(list[1]["refused"] == true);
  CHECK(list[2] == json{{"key", "mixflow_enabled"},
                        {"value", true},
                        {"reason", "exported to SimpleTuner; not used by the studio's trainer"},
                        {"refused", false}});
  CHECK(describe(ignored_by_trainer(resolve_json({{"mixflow_enabled", true}}))[0]) ==
        "mixflow_enabled = true: exported to SimpleTuner; not used by the studio's trainer");
}
