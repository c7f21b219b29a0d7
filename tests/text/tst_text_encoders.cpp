// CLIP and T5 text encoders beyond the fixtures: pooling rules, masks, loading from a text_encoder folder
// (fp16 / bf16 storage into fp32), and the errors for missing, unexpected and mis-shaped tensors.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/text/clip_text_model.h"
#include "core/text/t5_encoder.h"
#include "tests/test_support.h"

using namespace repa;

namespace {

nlohmann::json tiny_clip_json(int64_t eos_token_id = 2) {
  return {{"vocab_size", 64},           {"hidden_size", 16},
          {"intermediate_size", 32},    {"num_hidden_layers", 3},
          {"num_attention_heads", 2},   {"max_position_embeddings", 12},
          {"hidden_act", "quick_gelu"}, {"eos_token_id", eos_token_id},
          {"projection_dim", 8},        {"architectures", {"CLIPTextModelWithProjection"}}};
}

nlohmann::json tiny_t5_json() {
  return {{"vocab_size", 40},
          {"d_model", 16},
          {"d_kv", 4},
          {"d_ff", 24},
          {"num_layers", 2},
          {"num_heads", 3},
          {"relative_attention_num_buckets", 8},
          {"relative_attention_max_distance", 16},
          {"feed_forward_proj", "gated-gelu"}};
}

std::map<std::string, torch::Tensor> weights_of(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : module.named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

std::string load_error(const std::function<void()>& load) {
  try {
    load();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

template <class Loader>
std::string load_clip_with(const text::ClipTextConfig& config, const std::map<std::string, torch::Tensor>& weights,
                           Loader&& loader) {
  std::vector<std::string> names;
  for (const auto& [name, value] : weights) names.push_back(name);
  return load_error([&] {
    loader(
        config, names, [&](const std::string& n) { return weights.at(n); }, "tiny.safetensors");
  });
}

}  // namespace

TEST_CASE("CLIP config: projection from architectures, activation checked") {
  const auto config = text::ClipTextConfig::from_json(tiny_clip_json());
  CHECK(config.with_projection);
  CHECK(config.projection_dim == 8);
  CHECK(config.num_hidden_layers == 3);
  // Keys a config leaves out take transformers' CLIPTextConfig defaults (eos 49407: the first-eos rule).
  const auto defaults = text::ClipTextConfig::from_json(nlohmann::json::object());
  CHECK(defaults.eos_token_id == 49407);
  CHECK(defaults.hidden_size == 512);
  CHECK_FALSE(defaults.with_projection);
  auto bad = tiny_clip_json();
  bad["hidden_act"] = "swish";
  CHECK_THROWS_WITH_AS(text::ClipTextConfig::from_json(bad), doctest::Contains("hidden_act"), InputError);
}

TEST_CASE("CLIP pooling: argmax rule for eos_token_id 2, first eos (or 0) otherwise") {
  const auto ids = torch::tensor(std::vector<int64_t>{5, 9, 3, 9, 4, 7, 1, 2}).view({2, 4});
  auto argmax_model = text::ClipTextModel(text::ClipTextConfig::from_json(tiny_clip_json(2)));
  CHECK(torch::equal(argmax_model->eos_positions(ids), torch::tensor(std::vector<int64_t>{1, 1})));
  auto eos_model = text::ClipTextModel(text::ClipTextConfig::from_json(tiny_clip_json(3)));
  CHECK(torch::equal(eos_model->eos_positions(ids), torch::tensor(std::vector<int64_t>{2, 0})));  // row 1 holds no 3
}

TEST_CASE("CLIP forward: hidden states, final norm, pooled row, projection, masks") {
  torch::manual_seed(0);
  auto model = text::ClipTextModel(text::ClipTextConfig::from_json(tiny_clip_json()));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor(std::vector<int64_t>{62, 4, 5, 63, 63, 63, 62, 7, 8, 9, 10, 63}).view({2, 6});
  const auto out = model->forward(ids);
  REQUIRE(out.hidden_states.size() == 4);
  CHECK(torch::allclose(out.last_hidden_state, model->text_model->final_layer_norm(out.hidden_states[3])));
  CHECK(torch::equal(out.pooler_output[0], out.last_hidden_state[0][3]));
  CHECK(torch::equal(out.pooler_output[1], out.last_hidden_state[1][5]));
  CHECK(out.text_embeds.sizes() == torch::IntArrayRef({2, 8}));
  // Causal: a token's state does not depend on later tokens.
  auto changed = ids.clone();
  changed[0][5] = 11;
  CHECK(
      torch::equal(model->forward(changed).hidden_states[3][0].slice(0, 0, 5), out.hidden_states[3][0].slice(0, 0, 5)));
  // An all-ones mask is no mask; masking a key changes the later positions only.
  CHECK(torch::equal(model->forward(ids, torch::ones_like(ids)).last_hidden_state, out.last_hidden_state));
  auto mask = torch::ones_like(ids);
  mask[0][1] = 0;
  const auto masked = model->forward(ids, mask).last_hidden_state;
  CHECK(torch::equal(masked[0][0], out.last_hidden_state[0][0]));
  CHECK_FALSE(torch::allclose(masked[0][2], out.last_hidden_state[0][2]));
  CHECK_THROWS_AS(model->forward(torch::zeros({1, 13}, torch::kLong)), InputError);
}

TEST_CASE("CLIP loading names missing, unexpected and mis-shaped tensors") {
  const auto config = text::ClipTextConfig::from_json(tiny_clip_json());
  auto source = text::ClipTextModel(config);
  const auto weights = weights_of(*source);
  const auto loader = [](auto&&... args) { text::load_clip_text_model(args...); };
  CHECK(load_clip_with(config, weights, loader) == "no error");
  auto with_ids = weights;
  with_ids["text_model.embeddings.position_ids"] = torch::arange(12).unsqueeze(0);  // older checkpoints
  CHECK(load_clip_with(config, with_ids, loader) == "no error");

  auto missing = weights;
  missing.erase("text_model.encoder.layers.2.mlp.fc1.weight");
  auto message = load_clip_with(config, missing, loader);
  CHECK(message.find("tiny.safetensors") != std::string::npos);
  CHECK(message.find("missing (1)") != std::string::npos);
  CHECK(message.find("text_model.encoder.layers.2.mlp.fc1.weight") != std::string::npos);

  auto wrong = weights;
  wrong["text_model.final_layer_norm.weight"] = torch::ones({17});
  wrong["text_model.encoder.layers.3.mlp.fc1.weight"] = torch::ones({32, 16});
  message = load_clip_with(config, wrong, loader);
  CHECK(message.find("wrong shape (1)") != std::string::npos);
  CHECK(message.find("text_model.final_layer_norm.weight: checkpoint [17], model [16]") != std::string::npos);
  CHECK(message.find("unexpected (1)") != std::string::npos);
  CHECK(message.find("text_model.encoder.layers.3.mlp.fc1.weight") != std::string::npos);
}

TEST_CASE("CLIP from a text_encoder folder: fp16 storage computed in fp32") {
  torch::manual_seed(1);
  const auto config = text::ClipTextConfig::from_json(tiny_clip_json());
  auto source = text::ClipTextModel(config);
  test::ScratchDir dir("repa-clip-folder");
  io::NamedTensors tensors;
  for (const auto& [name, value] : weights_of(*source)) tensors.emplace_back(name, value.to(torch::kHalf));
  io::save_safetensors(dir.file("model.fp16.safetensors"), tensors);
  test::write_bytes(dir.file("config.json"), tiny_clip_json().dump());
  auto model = text::load_clip_text_model(dir.path().string());
  CHECK(model->config().with_projection);
  const auto loaded = weights_of(*model);
  for (const auto& [name, value] : tensors) {
    CAPTURE(name);
    CHECK((loaded.at(name).scalar_type() == torch::kFloat));
    CHECK(torch::equal(loaded.at(name), value.to(torch::kFloat)));
  }
  CHECK_THROWS_WITH_AS(text::load_clip_text_model(dir.file("nothing")), doctest::Contains("does not exist"),
                       InputError);
}

TEST_CASE("T5 config: feed_forward_proj sets the FFN") {
  const auto defaults = text::T5EncoderConfig::from_json(nlohmann::json::object());  // T5Config's defaults
  CHECK_FALSE(defaults.is_gated_act);
  CHECK(defaults.dense_act_fn == "relu");
  CHECK(defaults.d_model == 512);
  auto config = text::T5EncoderConfig::from_json(tiny_t5_json());
  CHECK(config.is_gated_act);
  CHECK(config.dense_act_fn == "gelu_new");
  auto relu = tiny_t5_json();
  relu["feed_forward_proj"] = "relu";
  config = text::T5EncoderConfig::from_json(relu);
  CHECK_FALSE(config.is_gated_act);
  auto model = text::T5EncoderModel(config);
  CHECK(weights_of(*model).count("encoder.block.1.layer.1.DenseReluDense.wi.weight") == 1);
  relu["feed_forward_proj"] = "gated-swish";
  CHECK_THROWS_WITH_AS(text::T5EncoderConfig::from_json(relu), doctest::Contains("gated-swish"), InputError);
}

TEST_CASE("T5 forward: shared bias table, masks, final-normed last state") {
  torch::manual_seed(2);
  auto model = text::T5EncoderModel(text::T5EncoderConfig::from_json(tiny_t5_json()));
  model->eval();
  const auto names = weights_of(*model);
  CHECK(names.count("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight") == 1);
  CHECK(names.count("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight") == 0);
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor(std::vector<int64_t>{5, 6, 7, 1, 0, 0}).view({1, 6});
  const auto out = model->forward(ids);
  REQUIRE(out.hidden_states.size() == 3);
  CHECK(torch::equal(out.hidden_states[2], out.last_hidden_state));
  CHECK(torch::equal(model->forward(ids, torch::ones_like(ids)).last_hidden_state, out.last_hidden_state));
  const auto mask = torch::tensor(std::vector<int64_t>{1, 1, 1, 1, 0, 0}).view({1, 6});
  const auto masked = model->forward(ids, mask).last_hidden_state;
  CHECK_FALSE(torch::allclose(masked, out.last_hidden_state));  // SD3/FLUX attend to padding, PixArt does not
  // Masked padding is invisible: changing a padded id leaves the real tokens' states alone.
  auto changed = ids.clone();
  changed[0][5] = 9;
  CHECK(torch::allclose(model->forward(changed, mask).last_hidden_state.slice(1, 0, 4), masked.slice(1, 0, 4), 1e-6,
                        1e-6));
}

TEST_CASE("T5 loading: the tied embedding under either name, named errors") {
  const auto config = text::T5EncoderConfig::from_json(tiny_t5_json());
  auto source = text::T5EncoderModel(config);
  auto weights = weights_of(*source);
  const auto loader = [](auto&&... args) { text::load_t5_encoder(args...); };
  auto load = [&](const std::map<std::string, torch::Tensor>& w) {
    std::vector<std::string> names;
    for (const auto& [name, value] : w) names.push_back(name);
    return load_error([&] {
      loader(
          config, names, [&](const std::string& n) { return w.at(n); }, "t5.safetensors");
    });
  };
  CHECK(load(weights) == "no error");
  auto both = weights;
  both["encoder.embed_tokens.weight"] = weights.at("shared.weight");
  CHECK(load(both) == "no error");
  auto embed_only = weights;
  embed_only.erase("shared.weight");
  embed_only["encoder.embed_tokens.weight"] = weights.at("shared.weight");
  CHECK(load(embed_only) == "no error");
  both["encoder.embed_tokens.weight"] = weights.at("shared.weight") + 1;
  CHECK(load(both).find("differ") != std::string::npos);

  auto missing = weights;
  missing.erase("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  CHECK(load(missing).find("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight") !=
        std::string::npos);
  auto wrong = weights;
  wrong["encoder.block.1.layer.1.DenseReluDense.wo.weight"] = torch::zeros({16, 25});
  CHECK(load(wrong).find("encoder.block.1.layer.1.DenseReluDense.wo.weight: checkpoint [16, 25], model [16, 24]") !=
        std::string::npos);

  // A folder with bf16 storage, as FLUX's text_encoder_2 ships it.
  test::ScratchDir dir("repa-t5-folder");
  io::NamedTensors tensors;
  for (const auto& [name, value] : weights) tensors.emplace_back(name, value.to(torch::kBFloat16));
  io::save_safetensors(dir.file("model.safetensors"), tensors);
  test::write_bytes(dir.file("config.json"), tiny_t5_json().dump());
  auto model = text::load_t5_encoder(dir.path().string());
  CHECK(torch::equal(model->shared->weight, weights.at("shared.weight").to(torch::kBFloat16).to(torch::kFloat)));

  // Sharded, as the real T5-XXL ships: two files and the index naming each tensor's shard.
  test::ScratchDir sharded("repa-t5-sharded");
  io::NamedTensors first, second;
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, value] : weights) {
    const bool in_first = name.find("block.1.") == std::string::npos;
    (in_first ? first : second).emplace_back(name, value);
    index["weight_map"][name] = in_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  io::save_safetensors(sharded.file("model-00001-of-00002.safetensors"), first);
  io::save_safetensors(sharded.file("model-00002-of-00002.safetensors"), second);
  test::write_bytes(sharded.file("model.safetensors.index.json"), index.dump());
  test::write_bytes(sharded.file("config.json"), tiny_t5_json().dump());
  auto from_shards = text::load_t5_encoder(sharded.path().string());
  const auto loaded = weights_of(*from_shards);
  for (const auto& [name, value] : weights) {
    CAPTURE(name);
    CHECK(torch::equal(loaded.at(name), value));
  }
}

TEST_CASE("Encoders in bf16: masks use the dtype's lowest value, results follow fp32") {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  auto t5 = text::T5EncoderModel(text::T5EncoderConfig::from_json(tiny_t5_json()));
  t5->eval();
  const auto ids = torch::tensor(std::vector<int64_t>{5, 6, 7, 1, 0, 0}).view({1, 6});
  const auto mask = torch::tensor(std::vector<int64_t>{1, 1, 1, 1, 0, 0}).view({1, 6});
  const auto want = t5->forward(ids, mask).last_hidden_state;
  t5->to(torch::kBFloat16);
  const auto got = t5->forward(ids, mask).last_hidden_state;
  CHECK((got.scalar_type() == torch::kBFloat16));
  CHECK_FALSE(torch::isnan(got).any().item<bool>());
  CHECK(torch::allclose(got.to(torch::kFloat), want, 0.05, 0.05));

  auto clip = text::ClipTextModel(text::ClipTextConfig::from_json(tiny_clip_json()));
  clip->eval();
  const auto clip_ids = torch::tensor(std::vector<int64_t>{62, 4, 5, 63, 0, 0}).view({1, 6});
  const auto clip_want = clip->forward(clip_ids, mask).last_hidden_state;
  clip->to(torch::kBFloat16);
  const auto clip_got = clip->forward(clip_ids, mask).last_hidden_state;
  CHECK_FALSE(torch::isnan(clip_got).any().item<bool>());
  CHECK(torch::allclose(clip_got.to(torch::kFloat), clip_want, 0.1, 0.1));
}
