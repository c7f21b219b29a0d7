#include "core/text/t5_tokenizer.h"

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/text/unicode.h"

namespace repa::text {
namespace {

namespace fs = std::filesystem;

std::string strip_python_space(const std::string& text, bool left, bool right) {
  const std::u32string chars = unicode::decode_utf8(text, "prompt");
  std::size_t begin = 0, end = chars.size();
  if (left)
    while (begin < end && unicode::is_python_space(chars[begin])) ++begin;
  if (right)
    while (end > begin && unicode::is_python_space(chars[end - 1])) --end;
  return unicode::encode_utf8(chars.substr(begin, end - begin));
}

}  // namespace

T5Tokenizer::T5Tokenizer(const std::string& spiece_path, T5TokenizerOptions options)
    : T5Tokenizer(SentencePieceModel::from_file(spiece_path), options, spiece_path) {}

T5Tokenizer::T5Tokenizer(SentencePieceModel model, T5TokenizerOptions options, const std::string& source)
    : model_(std::move(model)), options_(options), source_(source) {
  const auto required = [&](const char* piece) {
    const int id = model_.piece_to_id(piece);
    if (model_.piece(id).text != piece) throw InputError("T5 tokenizer '" + source + "' has no piece '" + piece + "'");
    return static_cast<int64_t>(id);
  };
  eos_id_ = required("</s>");
  pad_id_ = required("<pad>");
  unk_id_ = required("<unk>");
  special_tokens_ = {"</s>", "<unk>", "<pad>"};
  special_ids_ = {eos_id_, unk_id_, pad_id_};
  const int64_t pieces = model_.size();
  for (int i = 0; i < options_.extra_ids; ++i) {
    special_tokens_.push_back("<extra_id_" + std::to_string(i) + ">");
    special_ids_.push_back(pieces - 1 + options_.extra_ids - i);
  }
}

T5Tokenizer T5Tokenizer::from_folder(const std::string& folder, T5TokenizerOptions options) {
  const fs::path spiece = fs::path(folder) / "spiece.model";
  if (fs::exists(spiece)) return T5Tokenizer(spiece.string(), options);
  const fs::path json = fs::path(folder) / "tokenizer.json";
  if (fs::exists(json)) return from_tokenizer_json(json.string(), options);
  throw InputError("T5 tokenizer folder '" + folder + "' has neither spiece.model nor tokenizer.json");
}

T5Tokenizer T5Tokenizer::from_tokenizer_json(const std::string& path, T5TokenizerOptions options) {
  return T5Tokenizer(SentencePieceModel::from_tokenizer_json(path), options, path);
}

int64_t T5Tokenizer::vocab_size() const {
  return model_.size() + options_.extra_ids;
}

int64_t T5Tokenizer::token_id(const std::string& piece) const {
  for (std::size_t i = 0; i < special_tokens_.size(); ++i)
    if (special_tokens_[i] == piece) return special_ids_[i];
  return model_.piece_to_id(piece);
}

std::vector<std::string> T5Tokenizer::tokenize(const std::string& prompt) const {
  unicode::decode_utf8(prompt, "prompt");  // names the byte offset of invalid UTF-8 before sentencepiece sees it
  auto parts = split_on_special_tokens(prompt, special_tokens_);
  // <extra_id_N> are added with lstrip and rstrip: the whitespace around them goes.
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].second < 3) continue;
    if (i > 0 && parts[i - 1].second < 0) parts[i - 1].first = strip_python_space(parts[i - 1].first, false, true);
    if (i + 1 < parts.size() && parts[i + 1].second < 0)
      parts[i + 1].first = strip_python_space(parts[i + 1].first, true, false);
  }
  std::vector<std::string> out;
  for (const auto& [piece, special] : parts) {
    if (special >= 0) {
      out.push_back(piece);
      continue;
    }
    if (piece.empty()) continue;
    for (auto& encoded : model_.encode(piece)) out.push_back(std::move(encoded.first));
  }
  return out;
}

std::vector<int64_t> T5Tokenizer::encode(const std::string& prompt) const {
  std::vector<int64_t> ids;
  for (const auto& piece : tokenize(prompt)) ids.push_back(token_id(piece));
  ids.push_back(eos_id_);
  return ids;
}

TokenBatch T5Tokenizer::operator()(const std::vector<std::string>& prompts, int64_t max_length) const {
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(prompts.size());
  for (const auto& prompt : prompts) ids.push_back(encode(prompt));
  return pad_and_truncate(ids, max_length > 0 ? max_length : options_.max_length, pad_id_);
}

}  // namespace repa::text
