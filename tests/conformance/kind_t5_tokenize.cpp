// t5_tokenize: transformers' slow T5Tokenizer (sentencepiece) on the fixture's prompts; ids exact.
#include <string>
#include <vector>

#include "core/text/t5_tokenizer.h"
#include "tests/conformance/fixture.h"
#include "tests/conformance/tokenizer_files.h"

namespace {

using repa::conformance::Comparison;
using repa::conformance::Fixture;

Comparison check_t5_tokenize(const Fixture& fixture) {
  const auto& config = fixture.config();
  repa::text::T5TokenizerOptions options;
  options.max_length = config.at("max_length").get<int64_t>();
  options.extra_ids = config.value("extra_ids", options.extra_ids);
  const repa::text::T5Tokenizer tokenizer(
      repa::conformance::tokenizer_file(fixture.path(), config, "spiece_file", "spiece_sha256"), options);

  const auto prompts = nlohmann::json::parse(fixture.meta("prompts")).get<std::vector<std::string>>();
  Comparison result(fixture.atol(), fixture.rtol());
  const auto expect_same = [&](const std::string& what, int64_t got, int64_t want) {
    result.check(what, torch::tensor({got}), torch::tensor({want}));
  };
  expect_same("count", static_cast<int64_t>(prompts.size()), std::stoll(fixture.meta("count")));
  const auto expect_id = [&](const std::string& key, int64_t got) {
    if (config.contains(key)) expect_same("config." + key, got, config.at(key).get<int64_t>());
  };
  expect_id("eos_token_id", tokenizer.eos_id());
  expect_id("pad_token_id", tokenizer.pad_id());
  expect_id("unk_token_id", tokenizer.unk_id());
  expect_id("vocab_size_with_extra_ids", tokenizer.vocab_size());

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

REPA_CONFORMANCE_KIND("t5_tokenize", check_t5_tokenize);
