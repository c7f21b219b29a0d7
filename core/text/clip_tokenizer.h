// CLIP's byte-level BPE tokenizer, exactly as transformers' slow CLIPTokenizer runs without ftfy: BERT's
// BasicTokenizer clean-up (category-C characters dropped, CJK ideographs spaced, NFC, lower case), CLIP's
// regex split, GPT-2's byte-to-unicode map, BPE by merge rank with "</w>" on the last symbol, bos/eos,
// truncation to max_length keeping bos + max_length-2 tokens + eos, padding with the folder's pad token.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/text/token_batch.h"

namespace repa::text {

struct ClipTokenizerOptions {
  std::string bos_token = "<|startoftext|>";
  std::string eos_token = "<|endoftext|>";
  std::string unk_token = "<|endoftext|>";
  // SD 1.x and SDXL's first tokenizer pad with "<|endoftext|>"; SD 2.x, SDXL's and SD3's second with "!".
  std::string pad_token = "<|endoftext|>";
  int64_t max_length = 77;
};

class ClipTokenizer {
 public:
  // vocab.json + merges.txt; InputError naming the file on a missing or malformed file, or a merge whose
  // result the vocabulary lacks.
  ClipTokenizer(const std::string& vocab_path, const std::string& merges_path, ClipTokenizerOptions options = {});
  // A Hugging Face tokenizer/ folder: vocab.json, merges.txt, and the special tokens and model_max_length of
  // special_tokens_map.json / tokenizer_config.json when present.
  static ClipTokenizer from_folder(const std::string& folder);

  // bos + BPE ids + eos of one UTF-8 prompt, untruncated.
  std::vector<int64_t> encode(const std::string& prompt) const;
  // The BPE tokens (vocabulary strings) of one prompt, without bos/eos.
  std::vector<std::string> tokenize(const std::string& prompt) const;
  // Padded and truncated to max_length (options().max_length when 0), as diffusers pipelines call it.
  TokenBatch operator()(const std::vector<std::string>& prompts, int64_t max_length = 0) const;

  int64_t token_id(const std::string& token) const;  // unk id when absent
  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  std::size_t vocab_size() const { return vocab_.size(); }
  const ClipTokenizerOptions& options() const { return options_; }

 private:
  std::vector<std::string> bpe(const std::string& word) const;
  void tokenize_chunk(const std::string& chunk, std::vector<std::string>& out) const;

  ClipTokenizerOptions options_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<std::string, int> merge_ranks_;  // "first second" → rank
  std::vector<std::string> byte_symbols_;             // GPT-2's byte → printable symbol, as UTF-8
  std::vector<std::string> special_tokens_;           // split out before the clean-up, as added tokens are
  // Captions repeat words: each word's BPE is computed once (shared by copies; guarded for threads).
  struct BpeCache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::string>> words;
  };
  std::shared_ptr<BpeCache> cache_ = std::make_shared<BpeCache>();
  int64_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0, unk_id_ = 0;
};

}  // namespace repa::text
