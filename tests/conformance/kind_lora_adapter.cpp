// lora_adapter: SimpleTuner's LoRA (peft v0.20.0 layers, diffusers v0.40.0 models) on a UNet or a DiT. From the
// fixture's lora_config the family table must give the target list SimpleTuner passed to peft and adapt exactly
// `adapted_modules`; each of the two LoRA files the fixture holds is read back into the adapter and gives out.lora
// (the base gives out.base); the files our saver writes for that adapter hold exactly the fixture's tensor names,
// values and header entries (peft keeps target_modules as a set, so its order is compared as a set).
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "core/adapters/lora_file.h"
#include "core/adapters/lora_model.h"
#include "core/adapters/lora_targets.h"
#include "core/models/diffusers_layers.h"
#include "core/models/diffusers_weights.h"
#include "core/models/flux_transformer.h"
#include "core/models/sd3_transformer.h"
#include "core/models/unet_2d_condition.h"
#include "core/nn/state_loading.h"
#include "tests/conformance/fixture.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;
namespace adapters = repa::adapters;
namespace diffusers = repa::models::diffusers;

// The backbone of a fixture behind one call: build, load param.*, run the fixture's inputs.
struct Backbone {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor()> run;
};

Backbone build(const Fixture& fixture) {
  const auto cls = fixture.meta("class");
  const auto inputs = nlohmann::json::parse(fixture.meta("inputs"));
  const auto input = [&fixture, inputs](const std::string& key) {
    return inputs.contains(key) ? fixture.tensor(inputs.at(key).get<std::string>()) : torch::Tensor();
  };
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : fixture.names_with_prefix("param.")) weights[name] = fixture.tensor("param." + name);
  Backbone b;
  if (cls == "UNet2DConditionModel") {
    diffusers::ParameterInitScope no_init(diffusers::ParameterInit::Uninitialized);
    repa::models::UNet2DConditionModel model(repa::models::UNet2DConditionConfig::from_json(fixture.config()));
    repa::nn::load_state(*model, weights, fixture.path());
    b.module = model.ptr();
    b.run = [model, input]() mutable {
      repa::models::UNetConditioning cond;
      cond.class_labels = input("class_labels");
      cond.text_embeds = input("added_cond_kwargs.text_embeds");
      cond.time_ids = input("added_cond_kwargs.time_ids");
      return model->forward(input("sample"), input("timestep"), input("encoder_hidden_states"), cond).sample;
    };
  } else if (cls == "FluxTransformer2DModel") {
    repa::models::FluxTransformer model(repa::models::FluxTransformerConfig::from_json(fixture.config()));
    repa::nn::load_state(*model, weights, fixture.path());
    b.module = model.ptr();
    b.run = [model, input]() mutable {
      return model
          ->forward(input("hidden_states"), input("encoder_hidden_states"), input("pooled_projections"),
                    input("timestep"), input("img_ids"), input("txt_ids"), input("guidance"))
          .prediction;
    };
  } else if (cls == "SD3Transformer2DModel") {
    repa::models::SD3Transformer model(repa::models::SD3TransformerConfig::from_json(fixture.config()));
    repa::nn::load_state(*model, weights, fixture.path());
    b.module = model.ptr();
    b.run = [model, input]() mutable {
      return model
          ->forward(input("hidden_states"), input("encoder_hidden_states"), input("pooled_projections"),
                    input("timestep"))
          .prediction;
    };
  } else {
    throw repa::conformance::PendingFixture("the " + cls + " backbone is not built yet");
  }
  b.module->eval();
  return b;
}

std::set<std::string> as_set(const nlohmann::json& list) {
  std::set<std::string> out;
  for (const auto& item : list) out.insert(item.get<std::string>());
  return out;
}

// The header with target_modules in a fixed order (peft writes a Python set's order).
nlohmann::json normalised_header(const std::string& text) {
  auto j = nlohmann::json::parse(text);
  for (auto& item : j.items()) {
    const auto& key = item.key();
    if (key.size() >= 14 && key.compare(key.size() - 14, 14, "target_modules") == 0 && item.value().is_array()) {
      auto names = item.value().get<std::vector<std::string>>();
      std::sort(names.begin(), names.end());
      item.value() = names;
    }
  }
  return j;
}

std::string scratch_file(const std::string& tag) {
  static std::atomic<int> counter{0};
  return (std::filesystem::temp_directory_path() /
          ("repa-lora-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + tag + ".safetensors"))
      .string();
}

Comparison check_lora_adapter(const Fixture& fixture) {
  torch::NoGradGuard no_grad;
  const auto lc = nlohmann::json::parse(fixture.meta("lora_config"));
  const auto family = adapters::family_lora(lc.at("family").get<std::string>());
  std::vector<std::string> problems;
  if (family.component != lc.at("component_prefix").get<std::string>()) {
    problems.push_back("component prefix " + family.component + " vs " + lc.at("component_prefix").dump());
  }

  // The target list from the family table and the options, as SimpleTuner resolved it.
  nlohmann::json options = nlohmann::json::object();
  for (const char* key : {"flux_lora_target", "peft_lora_target_modules"}) {
    if (lc.contains(key) && !lc.at(key).is_null()) options[key] = lc.at(key);
  }
  auto targets = adapters::resolve_targets(family, options);
  if (std::set<std::string>(targets.names.begin(), targets.names.end()) != as_set(lc.at("target_modules"))) {
    problems.push_back("target_modules differ from SimpleTuner's " + lc.at("target_modules").dump());
  }
  if (lc.contains("modules_to_save") && lc.at("modules_to_save").is_array()) {
    targets.modules_to_save = lc.at("modules_to_save").get<std::vector<std::string>>();
  }
  const auto settings = adapters::LoraSettings::from_json({{"lora_rank", lc.at("lora_rank")},
                                                           {"lora_alpha", lc.at("lora_alpha_option")},
                                                           {"lora_dropout", lc.at("lora_dropout")},
                                                           {"lora_init_type", lc.value("lora_init_type", "default")},
                                                           {"use_dora", lc.value("use_dora", false)}});

  Comparison c(fixture.atol(), fixture.rtol());
  auto backbone = build(fixture);
  c.check("out.base", backbone.run(), fixture.tensor("out.base"));

  adapters::LoraModel lora(*backbone.module, settings, targets);
  const auto want_modules = nlohmann::json::parse(fixture.meta("adapted_modules")).get<std::vector<std::string>>();
  if (lora.adapted_modules() != std::vector<std::string>(want_modules)) {
    std::vector<std::string> missing, extra;
    const auto& got = lora.adapted_modules();
    std::set_difference(want_modules.begin(), want_modules.end(), got.begin(), got.end(), std::back_inserter(missing));
    std::set_difference(got.begin(), got.end(), want_modules.begin(), want_modules.end(), std::back_inserter(extra));
    problems.push_back("adapted modules: " + std::to_string(missing.size()) + " missing (" +
                       (missing.empty() ? "" : missing[0]) + "...), " + std::to_string(extra.size()) + " extra (" +
                       (extra.empty() ? "" : extra[0]) + "...)");
  }

  for (const std::string format : {"diffusers", "comfyui"}) {
    // The fixture's file as SimpleTuner wrote it, read back through our loader.
    const auto prefix = "lora." + format + ".";
    repa::io::NamedTensors tensors;
    for (const auto& name : fixture.names_with_prefix(prefix))
      tensors.emplace_back(name, fixture.tensor(prefix + name));
    std::map<std::string, std::string> header;
    const auto fixture_header = nlohmann::json::parse(fixture.meta("lora_file_metadata_" + format));
    for (const auto& item : fixture_header.items()) {
      header[item.key()] = item.value().get<std::string>();
    }
    const auto path = scratch_file(format);
    repa::io::save_safetensors(path, tensors, header);
    adapters::LoraFile file;
    try {
      file = adapters::read_lora_file(path, family, *backbone.module);
      std::filesystem::remove(path);
    } catch (...) {
      std::filesystem::remove(path);
      throw;
    }
    for (auto& p : lora.parameters()) p.zero_();  // each file must bring every value itself
    adapters::load_lora(lora, file, fixture.path() + " (" + prefix + "*)");
    c.check("out.lora (" + format + " file)", backbone.run(), fixture.tensor("out.lora"));

    // What we write for this adapter: same names, values and header.
    const auto content = adapters::lora_file_content(lora, family, adapters::parse_lora_format(format), file.extra);
    const auto fixture_names = fixture.names_with_prefix(prefix);
    std::set<std::string> ours, theirs(fixture_names.begin(), fixture_names.end());
    for (const auto& item : content.tensors) {
      ours.insert(item.first);
      if (theirs.count(item.first)) c.check(prefix + item.first, item.second, fixture.tensor(prefix + item.first));
    }
    if (ours != theirs) {
      std::vector<std::string> missing, extra;
      std::set_difference(theirs.begin(), theirs.end(), ours.begin(), ours.end(), std::back_inserter(missing));
      std::set_difference(ours.begin(), ours.end(), theirs.begin(), theirs.end(), std::back_inserter(extra));
      problems.push_back(format + " file: " + std::to_string(missing.size()) + " names missing (" +
                         (missing.empty() ? "" : missing[0]) + "), " + std::to_string(extra.size()) + " extra (" +
                         (extra.empty() ? "" : extra[0]) + ")");
    }
    std::set<std::string> header_keys, our_keys;
    for (const auto& item : header) header_keys.insert(item.first);
    for (const auto& item : content.metadata) our_keys.insert(item.first);
    if (header_keys != our_keys) problems.push_back(format + " header: other entries than the fixture's");
    for (const auto& item : header) {
      if (!content.metadata.count(item.first)) continue;
      const auto& mine = content.metadata.at(item.first);
      if (item.first == "lora_adapter_metadata") {
        // Same JSON, and byte for byte the same text once peft's set order is sorted.
        const auto ours_json = normalised_header(mine), theirs_json = normalised_header(item.second);
        if (ours_json != theirs_json) {
          std::string keys;
          for (const auto& entry : theirs_json.items()) {
            const auto ours_value = ours_json.contains(entry.key()) ? ours_json.at(entry.key()).dump() : "missing";
            if (ours_value != entry.value().dump())
              keys += " " + entry.key() + " = " + ours_value + " vs " + entry.value().dump();
          }
          for (const auto& entry : ours_json.items())
            if (!theirs_json.contains(entry.key())) keys += " " + entry.key() + " (not in the fixture)";
          problems.push_back(format + " header lora_adapter_metadata differs:" + keys);
        } else if (normalised_header(item.second).dump(2) != mine) {
          problems.push_back(format + " header lora_adapter_metadata: same JSON, other formatting");
        }
      } else if (mine != item.second) {
        problems.push_back(format + " header " + item.first + ": " + mine + " vs " + item.second);
      }
    }
  }
  if (!problems.empty()) {
    std::string message;
    for (const auto& p : problems) message += (message.empty() ? "" : "; ") + p;
    throw std::runtime_error(message);
  }
  return c;
}

}  // namespace

REPA_CONFORMANCE_KIND("lora_adapter", check_lora_adapter);
