// T5 tokenizer behaviour beyond the fixtures: tokenizer.json (Unigram) gives the ids spiece.model gives,
// added tokens in a prompt, truncation counts, and the errors for missing or malformed files.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/base/error.h"
#include "core/text/t5_tokenizer.h"
#include "tests/test_support.h"

using namespace repa;
using text::T5Tokenizer;

namespace {

std::string spiece_path() {
  return test::fixture_path("tokenizers/t5/spiece.model");
}

const T5Tokenizer& real_tokenizer() {
  static const T5Tokenizer tokenizer(spiece_path());
  return tokenizer;
}

std::string base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += alphabet[(v >> (6 * k)) & 63];
  }
  if (i < bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (i + 1 < bytes.size() ? uint8_t(bytes[i + 1]) << 8 : 0);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The tokenizer.json a fast-tokenizer conversion writes for this model: Unigram vocabulary with scores,
// the extra ids appended, and the Precompiled normaliser.
std::string tokenizer_json_of(const text::SentencePieceModel& model) {
  nlohmann::json vocab = nlohmann::json::array();
  for (int i = 0; i < model.size(); ++i) vocab.push_back({model.piece(i).text, model.piece(i).score});
  for (int i = 99; i >= 0; --i) vocab.push_back({"<extra_id_" + std::to_string(i) + ">", 0.0});
  nlohmann::json added = nlohmann::json::array();
  for (const char* token : {"<pad>", "</s>", "<unk>"}) added.push_back({{"content", token}, {"special", true}});
  nlohmann::json precompiled = nlohmann::json::object();
  precompiled["type"] = "Precompiled";
  precompiled["precompiled_charsmap"] = base64(model.precompiled_charsmap());
  nlohmann::json strip = nlohmann::json::object();
  strip["type"] = "Strip";
  strip["strip_left"] = false;
  strip["strip_right"] = true;
  nlohmann::json json = nlohmann::json::object();
  json["model"] = nlohmann::json::object();
  json["model"]["type"] = "Unigram";
  json["model"]["unk_id"] = model.unk_id();
  json["model"]["vocab"] = vocab;
  json["normalizer"] = nlohmann::json::object();
  json["normalizer"]["type"] = "Sequence";
  json["normalizer"]["normalizers"] = nlohmann::json::array({precompiled, strip});
  json["added_tokens"] = added;
  return json.dump();
}

std::string message_of(const std::function<void()>& make) {
  try {
    make();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("T5 tokenizer: specials, added tokens in a prompt, truncation") {
  const auto& t = real_tokenizer();
  CHECK(t.eos_id() == 1);
  CHECK(t.pad_id() == 0);
  CHECK(t.unk_id() == 2);
  CHECK(t.vocab_size() == 32100);
  CHECK(t.encode("") == std::vector<int64_t>{1});
  CHECK(t.encode("   ") == std::vector<int64_t>{1});
  CHECK(t.token_id("<extra_id_0>") == 32099);
  CHECK(t.token_id("<extra_id_99>") == 32000);
  // An added token splits the prompt; each side is encoded on its own (with its own dummy prefix).
  auto a = t.encode("a cat"), b = t.encode("dog");
  a.pop_back();  // </s>
  b.pop_back();
  std::vector<int64_t> want = a;
  want.push_back(32099);
  want.insert(want.end(), b.begin(), b.end());
  want.push_back(1);
  CHECK(t.encode("a cat <extra_id_0> dog") == want);
  want = a;
  want.push_back(1);
  want.push_back(1);
  CHECK(t.encode("a cat</s>") == want);
  // Characters outside the vocabulary: one <unk> for a run.
  const auto unknown = t.encode("\u6771\u4EAC");
  CHECK(std::count(unknown.begin(), unknown.end(), 2) == 1);

  std::string long_prompt;
  for (int i = 0; i < 20; ++i) long_prompt += "the ";
  const auto batch = t({long_prompt, "the"}, 8);
  CHECK(batch.untruncated_lengths == std::vector<int64_t>{21, 2});
  CHECK(batch.truncated() == std::vector<std::size_t>{0});
  CHECK(batch.input_ids[0][7].item<int64_t>() == 1);
  CHECK(batch.input_ids[0][6].item<int64_t>() == t.encode("the")[0]);
  CHECK(batch.attention_mask[1].sum().item<int64_t>() == 2);
  CHECK(batch.input_ids[1][2].item<int64_t>() == 0);
}

TEST_CASE("T5 tokenizer: equal-score segmentations resolve as sentencepiece resolves them") {
  // U+2034 normalises to three primes; "′′"+"′" and "′"+"′′" score the same up to rounding. sentencepiece compares
  // a double candidate with the stored float, so the winner depends on the prefix. Ids from sentencepiece 0.1.97.
  const auto& t = real_tokenizer();
  CHECK(t.encode("\u2034") == std::vector<int64_t>{3, 17774, 7079, 1});
  CHECK(t.encode("x \u2034") == std::vector<int64_t>{3, 226, 3, 7079, 17774, 1});
  CHECK(t.encode("photo caf\u00e9 \u2015\u204b\u205e\u202e\u2034 ") ==
        std::vector<int64_t>{1202, 11949, 3, 2, 17774, 7079, 1});
}

TEST_CASE("T5 tokenizer: tokenizer.json gives the ids spiece.model gives") {
  const auto model = text::SentencePieceModel::from_file(spiece_path());
  CHECK(model.size() == 32000);
  CHECK(!model.precompiled_charsmap().empty());
  test::ScratchDir dir("repa-t5-json");
  test::write_bytes(dir.file("tokenizer.json"), tokenizer_json_of(model));
  const auto from_json = T5Tokenizer::from_folder(dir.path().string());
  CHECK(from_json.vocab_size() == 32100);
  for (const std::string prompt :
       {"a photograph of an astronaut riding a horse", "  multiple     spaces  ", "ＦＵＬＬＷＩＤＴＨ ① ﬁne ½",
        "caf\u00e9 e\u0301cole", "\u6771\u4EAC and \U0001F431", "don't <extra_id_3> stop", "tab\tnew\nline"}) {
    CAPTURE(prompt);
    CHECK(from_json.encode(prompt) == real_tokenizer().encode(prompt));
  }
}

TEST_CASE("T5 tokenizer: bad files are named") {
  test::ScratchDir dir("repa-t5-bad");
  const auto missing = message_of([&] { T5Tokenizer(dir.file("spiece.model")); });
  CHECK(missing.find(dir.file("spiece.model")) != std::string::npos);
  CHECK(message_of([&] { T5Tokenizer::from_folder(dir.path().string()); }).find("neither spiece.model") !=
        std::string::npos);
  test::write_bytes(dir.file("spiece.model"), std::string("\x0a\xff\xff\xff\xff\x0f", 6));
  CHECK(message_of([&] { T5Tokenizer(dir.file("spiece.model")); }).find("malformed") != std::string::npos);
  test::write_bytes(dir.file("tokenizer.json"), R"({"model": {"type": "BPE", "vocab": {}}})");
  CHECK(message_of([&] { T5Tokenizer::from_tokenizer_json(dir.file("tokenizer.json")); }).find("no Unigram model") !=
        std::string::npos);
}
