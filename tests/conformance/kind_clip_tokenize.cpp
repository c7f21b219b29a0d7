// clip_tokenize: transformers' slow CLIPTokenizer without ftfy on the fixture's prompts; ids exact.
#include <string>
#include <vector>

#include "core/text/clip_tokenizer.h"
#include "tests/conformance/fixture.h"
#include "tests/conformance/tokenizer_files.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

Comparison check_clip_tokenize(const Fixture& fixture) {
  const auto& config = fixture.config();
  repa::text::ClipTokenizerOptions options;
  options.bos_token = config.value("bos_token", options.bos_token);
  options.eos_token = config.value("eos_token", options.eos_token);
  options.pad_token = config.value("pad_token", options.pad_token);
  options.max_length = config.value("max_length", options.max_length);
  const repa::text::ClipTokenizer tokenizer(
      repa::conformance::tokenizer_file(fixture.path(), config, "vocab_file", "vocab_sha256"),
      repa::conformance::tokenizer_file(fixture.path(), config, "merges_file", "merges_sha256"), options);

  const auto prompts = nlohmann::json::parse(fixture.meta("prompts")).get<std::vector<std::string>>();
  Comparison result(fixture.atol(), fixture.rtol());
  const auto expect_same = [&](const std::string& what, int64_t got, int64_t want) {
    result.check(what, torch::tensor({got}), torch::tensor({want}));
  };
  expect_same("count", static_cast<int64_t>(prompts.size()), std::stoll(fixture.meta("count")));
  const auto expect_id = [&](const std::string& key, int64_t got) {
    if (config.contains(key)) expect_same("config." + key, got, config.at(key).get<int64_t>());
  };
  expect_id("bos_token_id", tokenizer.bos_id());
  expect_id("eos_token_id", tokenizer.eos_id());
  expect_id("pad_token_id", tokenizer.pad_id());

  const auto batch = tokenizer(prompts);
  result.check("out.input_ids", batch.input_ids, fixture.tensor("out.input_ids"));
  result.check("out.attention_mask", batch.attention_mask, fixture.tensor("out.attention_mask"));
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto name = "out.ids." + std::to_string(i);
    result.check(name, torch::tensor(tokenizer.encode(prompts[i])), fixture.tensor(name));
  }
  return result;
}

}  // namespace

REPA_CONFORMANCE_KIND("clip_tokenize", check_clip_tokenize);
