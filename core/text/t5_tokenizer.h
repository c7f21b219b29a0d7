// T5's SentencePiece unigram tokenizer as transformers' slow T5Tokenizer (legacy) runs it: the added tokens
// (</s>, <pad>, <unk>, <extra_id_N>) split out first, each remaining piece encoded as sentencepiece does
// (nmt_nfkc, whitespace collapsed, dummy prefix, unigram Viterbi; see sentencepiece_model.h), "</s>" appended,
// truncation keeping the first max_length - 1 ids and "</s>", padding with <pad> (0) on the right.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/text/sentencepiece_model.h"
#include "core/text/token_batch.h"

namespace repa::text {

struct T5TokenizerOptions {
  // SimpleTuner's tokenizer_max_length per family: 77 (SD3), 256 (Flux schnell), 300 (PixArt), 512 (Flux dev).
  int64_t max_length = 512;
  int extra_ids = 100;  // <extra_id_0> .. <extra_id_99> take the ids after the model's pieces, in reverse
};

class T5Tokenizer {
 public:
  // A sentencepiece model file (spiece.model); InputError naming the file when missing or unreadable.
  explicit T5Tokenizer(const std::string& spiece_path, T5TokenizerOptions options = {});
  // A Hugging Face tokenizer folder: its spiece.model, else its tokenizer.json (Unigram).
  static T5Tokenizer from_folder(const std::string& folder, T5TokenizerOptions options = {});
  // A fast-tokenizer tokenizer.json with a Unigram model and a Precompiled normaliser (what FLUX ships).
  static T5Tokenizer from_tokenizer_json(const std::string& path, T5TokenizerOptions options = {});

  std::vector<std::string> tokenize(const std::string& prompt) const;  // pieces, without </s>
  std::vector<int64_t> encode(const std::string& prompt) const;        // ids + </s>, untruncated
  TokenBatch operator()(const std::vector<std::string>& prompts, int64_t max_length = 0) const;

  int64_t token_id(const std::string& piece) const;
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t vocab_size() const;  // pieces + extra ids
  const T5TokenizerOptions& options() const { return options_; }

 private:
  T5Tokenizer(SentencePieceModel model, T5TokenizerOptions options, const std::string& source);

  SentencePieceModel model_;
  T5TokenizerOptions options_;
  std::string source_;
  std::vector<std::string> special_tokens_;  // </s>, <unk>, <pad>, <extra_id_0>...
  std::vector<int64_t> special_ids_;
  int64_t eos_id_ = 1, pad_id_ = 0, unk_id_ = 2;
};

}  // namespace repa::text
