// CLIP tokenizer behaviour the fixtures do not spell out: folder settings, special tokens inside a prompt,
// truncation counts, and the errors for missing or mismatched vocabulary files.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/text/clip_tokenizer.h"
#include "tests/test_support.h"

using namespace repa;
using text::ClipTokenizer;

namespace {

std::string clip_file(const std::string& name) {
  return test::fixture_path("tokenizers/clip/" + name);
}

const ClipTokenizer& real_tokenizer() {
  static const ClipTokenizer tokenizer(clip_file("vocab.json"), clip_file("merges.txt"));
  return tokenizer;
}

// A byte-level vocabulary of the 256 byte symbols (and their </w> forms), the two specials and `extra`.
void write_small_vocab(const std::string& folder, const std::vector<std::string>& extra, const std::string& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  // The byte symbols are exactly the real vocabulary's first 512 entries; take them from it by id order.
  const auto real_vocab = nlohmann::json::parse(test::read_bytes(clip_file("vocab.json")));
  for (const auto& [token, value] : real_vocab.items())
    if (value.get<int64_t>() < 512) vocab[token] = value;
  int64_t id = 512;
  for (const auto& token : extra) vocab[token] = id++;
  vocab["<|startoftext|>"] = id++;
  vocab["<|endoftext|>"] = id++;
  test::write_bytes(folder + "/vocab.json", vocab.dump());
  test::write_bytes(folder + "/merges.txt", "#version: 0.2\n" + merges);
}

}  // namespace

TEST_CASE("CLIP tokenizer: bos/eos, BPE ids and special tokens written in a prompt") {
  const auto& t = real_tokenizer();
  CHECK(t.vocab_size() == 49408);
  CHECK(t.bos_id() == 49406);
  CHECK(t.eos_id() == 49407);
  CHECK(t.pad_id() == 49407);
  CHECK(t.encode("") == std::vector<int64_t>{49406, 49407});
  const auto a = t.token_id("a</w>"), b = t.token_id("b</w>");
  CHECK(a != b);
  CHECK(t.encode("A  b") == std::vector<int64_t>{49406, a, b, 49407});
  // A special token in the text is split out before the clean-up and kept as its id.
  CHECK(t.encode("a<|endoftext|>b") == std::vector<int64_t>{49406, a, 49407, b, 49407});
  // Digits are single tokens; control and format characters vanish.
  CHECK(t.tokenize("12") == std::vector<std::string>{"1</w>", "2</w>"});
  CHECK(t.tokenize("a\u200Db") == t.tokenize("ab"));
  // U+0345 folds to iota under the regex's IGNORECASE, so no alternative of the pattern takes it alone.
  CHECK(t.tokenize("a\u0345b") == std::vector<std::string>{"a</w>", "b</w>"});
  CHECK(t.tokenize("x\u0345!") == std::vector<std::string>{"x</w>", "!</w>"});
}

TEST_CASE("CLIP tokenizer: truncation keeps bos + 75 + eos and reports the untruncated count") {
  const auto& t = real_tokenizer();
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "a ";
  const auto batch = t({long_prompt, "a"});
  REQUIRE(batch.input_ids.sizes() == torch::IntArrayRef({2, 77}));
  CHECK(batch.untruncated_lengths == std::vector<int64_t>{102, 3});
  CHECK(batch.truncated() == std::vector<std::size_t>{0});
  CHECK(batch.input_ids[0][0].item<int64_t>() == 49406);
  CHECK(batch.input_ids[0][75].item<int64_t>() == t.token_id("a</w>"));
  CHECK(batch.input_ids[0][76].item<int64_t>() == 49407);
  CHECK(batch.attention_mask[0].sum().item<int64_t>() == 77);
  CHECK(batch.attention_mask[1].sum().item<int64_t>() == 3);
  CHECK(batch.input_ids[1][3].item<int64_t>() == 49407);  // padded with <|endoftext|>
  CHECK(t({"a"}, 5).input_ids.size(1) == 5);
}

TEST_CASE("CLIP tokenizer from a folder: pad token and max length from its settings") {
  test::ScratchDir dir("repa-clip-folder");
  std::filesystem::copy_file(clip_file("vocab.json"), dir.file("vocab.json"));
  std::filesystem::copy_file(clip_file("merges.txt"), dir.file("merges.txt"));
  test::write_bytes(dir.file("special_tokens_map.json"), R"({"pad_token": {"content": "!", "lstrip": false}})");
  test::write_bytes(dir.file("tokenizer_config.json"), R"({"model_max_length": 64})");
  const auto t = ClipTokenizer::from_folder(dir.path().string());
  CHECK(t.pad_id() == 0);
  CHECK(t.options().max_length == 64);
  const auto batch = t({"a"});
  CHECK(batch.input_ids.size(1) == 64);
  CHECK(batch.input_ids[0][3].item<int64_t>() == 0);
  // "!" is an added token when it pads: split out as the bare symbol, not BPE'd as "!</w>".
  CHECK(t.encode("a!")[2] == 0);
  CHECK(real_tokenizer().encode("a!")[2] == real_tokenizer().token_id("!</w>"));
}

TEST_CASE("CLIP tokenizer: BPE follows the merge ranks") {
  test::ScratchDir dir("repa-clip-small");
  write_small_vocab(dir.path().string(), {"lo", "low</w>"}, "l o\nlo w</w>\n");
  const ClipTokenizer t(dir.file("vocab.json"), dir.file("merges.txt"));
  CHECK(t.tokenize("low") == std::vector<std::string>{"low</w>"});
  CHECK(t.tokenize("lo") == std::vector<std::string>{"l", "o</w>"});  // no merge makes "lo</w>"
  CHECK(t.tokenize("lot") == std::vector<std::string>{"lo", "t</w>"});
}

TEST_CASE("CLIP tokenizer: bad files are named") {
  test::ScratchDir dir("repa-clip-bad");
  const auto message = [](const auto& make) {
    try {
      make();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto missing = message([&] { ClipTokenizer(dir.file("vocab.json"), clip_file("merges.txt")); });
  CHECK(missing.find(dir.file("vocab.json")) != std::string::npos);
  CHECK(missing.find("cannot be read") != std::string::npos);
  CHECK(message([&] { ClipTokenizer::from_folder(dir.path().string()); }).find("vocab.json") != std::string::npos);

  write_small_vocab(dir.path().string(), {"lo"}, "l o\nlo w</w>\n");
  const auto mismatch = message([&] { ClipTokenizer(dir.file("vocab.json"), dir.file("merges.txt")); });
  CHECK(mismatch.find("line 3") != std::string::npos);
  CHECK(mismatch.find("'low</w>'") != std::string::npos);
  CHECK(mismatch.find("do not belong together") != std::string::npos);

  test::write_bytes(dir.file("vocab.json"), "{\"a\": 1");
  CHECK(message([&] { ClipTokenizer(dir.file("vocab.json"), dir.file("merges.txt")); }).find("not valid JSON") !=
        std::string::npos);
  CHECK(message([&] { real_tokenizer().encode("bad \xFF byte"); }).find("byte offset 4") != std::string::npos);
}
