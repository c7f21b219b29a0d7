// The text-embedding cache on a tiny random CLIP pipeline folder: each distinct prompt is encoded once, an
// unchanged one never again, a changed one again; entries equal the encoder's own output; several encoders
// combine as the family spec says; prompts over the limit are named once per file with their token count.
#include <doctest/doctest.h>

#include <filesystem>

#include "core/base/error.h"
#include "core/text/clip_text_model.h"
#include "core/text/clip_tokenizer.h"
#include "core/text/random_text_encoder.h"
#include "core/text/t5_encoder.h"
#include "core/text/t5_tokenizer.h"
#include "core/text/text_embedding_cache.h"
#include "tests/test_support.h"

using namespace repa;
using namespace repa::text;
using repa::test::contains;
using repa::test::error_of;

namespace {

nlohmann::json tiny_clip(int64_t hidden, bool projection) {
  nlohmann::json config = {{"vocab_size", 49408},        {"hidden_size", hidden},    {"intermediate_size", 2 * hidden},
                           {"num_hidden_layers", 3},     {"num_attention_heads", 2}, {"max_position_embeddings", 77},
                           {"hidden_act", "quick_gelu"}, {"eos_token_id", 2},        {"projection_dim", 8}};
  if (projection) config["architectures"] = {"CLIPTextModelWithProjection"};
  return config;
}

void write_tokenizer(const std::string& folder) {
  std::filesystem::create_directories(folder);
  for (const char* name : {"vocab.json", "merges.txt"})
    std::filesystem::copy_file(test::fixture_path(std::string("tokenizers/clip/") + name), folder + "/" + name);
}

// A diffusers-layout folder with text_encoder/ + tokenizer/ (and the SDXL pair with `second`).
void write_pipeline(const std::string& root, bool second = false) {
  write_tokenizer(root + "/tokenizer");
  write_random_clip_text_encoder(root + "/text_encoder", tiny_clip(16, false), 1);
  if (second) {
    write_tokenizer(root + "/tokenizer_2");
    write_random_clip_text_encoder(root + "/text_encoder_2", tiny_clip(24, true), 2);
  }
}

std::vector<PromptSource> sources(const std::vector<std::string>& prompts) {
  std::vector<PromptSource> out;
  for (std::size_t i = 0; i < prompts.size(); ++i) out.push_back({prompts[i], "caption" + std::to_string(i) + ".txt"});
  return out;
}

}  // namespace

TEST_CASE("text-embedding cache: encoded once per distinct prompt, entries equal the encoder's output") {
  test::ScratchDir dir;
  write_pipeline(dir.file("pipe"));
  const auto spec = TextConditioningSpec::for_family("sd1x");
  TextEmbeddingCache cache(dir.file("cache"), spec, dir.file("pipe"));
  const std::vector<std::string> prompts = {"a red disc", "a blue square", "a red disc", ""};
  auto first = cache.fill(sources(prompts), 2);
  CHECK(first.prompts == 3);
  CHECK(first.computed == 3);
  CHECK(first.reused == 0);
  CHECK(first.encoder_parameters > 49408 * 16);
  CHECK(first.resident_loaded > 0);

  auto model = load_clip_text_model(dir.file("pipe/text_encoder"));
  const auto tokenizer = ClipTokenizer::from_folder(dir.file("pipe/tokenizer"));
  const auto tokens = tokenizer({"a blue square"}, 77);
  torch::NoGradGuard no_grad;
  const auto expected = model->forward(tokens.input_ids).last_hidden_state[0];
  const auto entry = cache.load("a blue square");
  REQUIRE(entry.count("hidden") == 1);
  CHECK(entry.count("pooled") == 0);
  CHECK(entry.at("hidden").sizes() == torch::IntArrayRef({77, 16}));
  CHECK(torch::allclose(entry.at("hidden"), expected, 1e-6, 1e-6));

  // Unchanged prompts are never encoded again, whoever asks; a changed caption is.
  TextEmbeddingCache again(dir.file("cache"), spec, dir.file("pipe"));
  int factory_calls = 0;
  auto counting = [&] {
    ++factory_calls;
    return std::make_unique<TextEmbedder>(spec, dir.file("pipe"));
  };
  const auto second = again.fill(sources(prompts), 2, {}, counting);
  CHECK(second.computed == 0);
  CHECK(second.reused == 3);
  CHECK(factory_calls == 0);  // nothing to encode: the encoders are not even loaded
  const auto changed = again.fill(sources({"a red disc", "a blue square, rotated", ""}), 2, {}, counting);
  CHECK(changed.computed == 1);
  CHECK(changed.reused == 2);
  CHECK(factory_calls == 1);
  const auto batch = again.load_batch({"a red disc", "a blue square, rotated"});
  CHECK(batch.at("hidden").sizes() == torch::IntArrayRef({2, 77, 16}));
  CHECK(contains(error_of([&] { again.load("never cached"); }), "\"never cached\""));
}

TEST_CASE("text-embedding cache: other weights, another family or another max length is another cache") {
  test::ScratchDir dir;
  write_pipeline(dir.file("pipe"));
  auto spec = TextConditioningSpec::for_family("sd1x");
  const TextEmbeddingCache a(dir.file("cache"), spec, dir.file("pipe"));
  spec.encoders[0].max_length = 32;
  const TextEmbeddingCache b(dir.file("cache"), spec, dir.file("pipe"));
  CHECK(a.folder() != b.folder());
  write_random_clip_text_encoder(dir.file("pipe/text_encoder"), tiny_clip(16, false), 99);
  const TextEmbeddingCache c(dir.file("cache"), TextConditioningSpec::for_family("sd1x"), dir.file("pipe"));
  CHECK(c.folder() != a.folder());
  const TextEmbeddingCache d(dir.file("cache"), TextConditioningSpec::for_family("sd1x"), dir.file("pipe"));
  CHECK(d.folder() == c.folder());
}

TEST_CASE("SDXL's spec: both encoders' penultimate states joined on features, the second one's text_embeds") {
  test::ScratchDir dir;
  write_pipeline(dir.file("pipe"), true);
  TextEmbedder embedder(TextConditioningSpec::for_family("sdxl"), dir.file("pipe"));
  const auto out = embedder.encode({"a green ring"});
  REQUIRE(out.size() == 1);
  CHECK(out[0].at("hidden").sizes() == torch::IntArrayRef({77, 40}));
  CHECK(out[0].at("pooled").sizes() == torch::IntArrayRef({8}));
  CHECK(out[0].count("mask") == 0);

  torch::NoGradGuard no_grad;
  const auto ids = ClipTokenizer::from_folder(dir.file("pipe/tokenizer"))({"a green ring"}, 77).input_ids;
  const auto first = load_clip_text_model(dir.file("pipe/text_encoder"))->forward(ids);
  const auto second = load_clip_text_model(dir.file("pipe/text_encoder_2"))->forward(ids);
  CHECK(torch::allclose(out[0].at("hidden").slice(1, 0, 16), first.hidden_states[2][0], 1e-6, 1e-6));
  CHECK(torch::allclose(out[0].at("hidden").slice(1, 16, 40), second.hidden_states[2][0], 1e-6, 1e-6));
  CHECK(torch::allclose(out[0].at("pooled"), second.text_embeds[0], 1e-6, 1e-6));
}

TEST_CASE("bad input: a missing tokenizer or encoder folder, a prompt over the limit named once per file") {
  test::ScratchDir dir;
  write_pipeline(dir.file("pipe"));
  CHECK(contains(error_of([&] { TextEmbedder(TextConditioningSpec::for_family("sdxl"), dir.file("pipe")); }),
                 "tokenizer_2"));
  CHECK(contains(error_of([&] { TextConditioningSpec::for_family("sd4"); }), "studio.text_conditioning 'sd4'"));
  std::filesystem::remove(dir.file("pipe/tokenizer/merges.txt"));
  CHECK(contains(error_of([&] { TextEmbedder(TextConditioningSpec::for_family("sd1x"), dir.file("pipe")); }),
                 "merges.txt"));
  write_tokenizer(dir.file("pipe2/tokenizer"));
  CHECK(contains(error_of([&] { TextEmbedder(TextConditioningSpec::for_family("sd1x"), dir.file("pipe2")); }),
                 "text_encoder"));

  write_pipeline(dir.file("pipe3"));
  std::string long_prompt;
  for (int i = 0; i < 90; ++i) long_prompt += "red ";
  TextEmbeddingCache cache(dir.file("cache"), TextConditioningSpec::for_family("sd1x"), dir.file("pipe3"));
  const auto report = cache.fill({{long_prompt + "disc", "a.txt"},
                                  {long_prompt + "square", "a.txt"},
                                  {long_prompt + "ring", "b.txt"},
                                  {"short", "c.txt"}},
                                 8);
  REQUIRE(report.warnings.size() == 2);
  CHECK(contains(report.warnings[0], "a.txt: a prompt of 93 tokens is longer than text_encoder keeps (77)"));
  CHECK(contains(report.warnings[1], "b.txt"));
}

namespace {

nlohmann::json tiny_t5(int64_t width) {
  return {{"vocab_size", 32128},
          {"d_model", width},
          {"d_kv", 4},
          {"d_ff", 24},
          {"num_layers", 2},
          {"num_heads", 2},
          {"relative_attention_num_buckets", 8},
          {"relative_attention_max_distance", 16},
          {"feed_forward_proj", "gated-gelu"}};
}

void write_t5(const std::string& root, const std::string& encoder, const std::string& tokenizer, int64_t width) {
  std::filesystem::create_directories(root + "/" + tokenizer);
  std::filesystem::copy_file(test::fixture_path("tokenizers/t5/spiece.model"),
                             root + "/" + tokenizer + "/spiece.model");
  write_random_t5_encoder(root + "/" + encoder, tiny_t5(width), 7);
}

}  // namespace

TEST_CASE("Flux's and PixArt's specs: T5 states, CLIP's pooled vector, PixArt's mask into encoder and backbone") {
  test::ScratchDir dir;
  write_pipeline(dir.file("flux"));
  write_t5(dir.file("flux"), "text_encoder_2", "tokenizer_2", 16);
  auto flux = TextConditioningSpec::for_family("flux");
  flux.encoders[1].max_length = 24;
  const auto out = TextEmbedder(flux, dir.file("flux")).encode({"a cyan cross"});
  CHECK(out[0].at("hidden").sizes() == torch::IntArrayRef({24, 16}));
  CHECK(out[0].at("pooled").sizes() == torch::IntArrayRef({16}));
  CHECK(out[0].at("mask").sizes() == torch::IntArrayRef({24}));  // cached for flux_attention_masked_training

  torch::NoGradGuard no_grad;
  auto t5 = load_t5_encoder(dir.file("flux/text_encoder_2"));
  T5TokenizerOptions options;
  options.max_length = 24;
  const auto t5_tokens = T5Tokenizer::from_folder(dir.file("flux/tokenizer_2"), options)({"a cyan cross"}, 24);
  CHECK(torch::allclose(out[0].at("hidden"), t5->forward(t5_tokens.input_ids).last_hidden_state[0], 1e-6, 1e-6));
  CHECK(torch::equal(out[0].at("mask"), t5_tokens.attention_mask[0]));
  auto clip = load_clip_text_model(dir.file("flux/text_encoder"));
  const auto clip_ids = ClipTokenizer::from_folder(dir.file("flux/tokenizer"))({"a cyan cross"}, 77).input_ids;
  CHECK(torch::allclose(out[0].at("pooled"), clip->forward(clip_ids).pooler_output[0], 1e-6, 1e-6));

  write_t5(dir.file("pixart"), "text_encoder", "tokenizer", 16);
  auto pixart = TextConditioningSpec::for_family("pixart");
  pixart.encoders[0].max_length = 24;
  const auto masked = TextEmbedder(pixart, dir.file("pixart")).encode({"a cyan cross"});
  CHECK(torch::equal(masked[0].at("mask"), t5_tokens.attention_mask[0]));
  CHECK(masked[0].at("mask").sum().item<int64_t>() < 24);
  auto pixart_t5 = load_t5_encoder(dir.file("pixart/text_encoder"));
  const auto expected = pixart_t5->forward(t5_tokens.input_ids, t5_tokens.attention_mask).last_hidden_state[0];
  CHECK(torch::allclose(masked[0].at("hidden"), expected, 1e-6, 1e-6));
  CHECK(!torch::allclose(masked[0].at("hidden"), pixart_t5->forward(t5_tokens.input_ids).last_hidden_state[0], 1e-4,
                         1e-4));
}

TEST_CASE("SD3's spec: two CLIPs joined on features, padded to T5's width, then T5 on the sequence") {
  test::ScratchDir dir;
  write_pipeline(dir.file("sd3"), true);  // CLIP widths 16 + 24
  write_t5(dir.file("sd3"), "text_encoder_3", "tokenizer_3", 48);
  auto spec = TextConditioningSpec::for_family("sd3");
  spec.encoders[2].max_length = 20;
  const auto out = TextEmbedder(spec, dir.file("sd3")).encode({"a purple ring"});
  CHECK(out[0].at("hidden").sizes() == torch::IntArrayRef({77 + 20, 48}));
  CHECK(out[0].at("hidden").slice(0, 0, 77).slice(1, 40, 48).abs().max().item<double>() == 0.0);  // the padding
  CHECK(out[0].at("hidden").slice(0, 77).abs().max().item<double>() > 0.0);
  CHECK(out[0].at("pooled").sizes() == torch::IntArrayRef({16 + 8}));  // pooler_output of the first, text_embeds

  spec.pad_to_widest = false;
  CHECK(contains(error_of([&] { TextEmbedder(spec, dir.file("sd3")).encode({"x"}); }), "widths 40 and 48 differ"));
}
