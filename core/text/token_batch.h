// What a tokenizer hands to a text encoder: padded ids, the attention mask, and how long each prompt was
// before truncation (so that callers can warn "prompt longer than the limit" with the count).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace repa::text {

struct TokenBatch {
  torch::Tensor input_ids;                   // (N, max_length) int64
  torch::Tensor attention_mask;              // (N, max_length) int64: 1 on tokens (specials included), 0 on padding
  std::vector<int64_t> untruncated_lengths;  // ids each prompt has before truncation, specials included
  int64_t max_length = 0;

  // Indices of the prompts that were cut to max_length.
  std::vector<std::size_t> truncated() const;
};

// Truncates each id list (specials included, the last id being the end-of-sequence) to max_length by
// keeping its first max_length - 1 ids and the last, as transformers' truncation=True does for CLIP and T5,
// then pads with pad_id on the right.
TokenBatch pad_and_truncate(const std::vector<std::vector<int64_t>>& ids, int64_t max_length, int64_t pad_id);

// Splits text around occurrences of the special tokens (longest match first, left to right) as the
// added-token trie of transformers' slow tokenizers does: (piece, index of the special token or -1).
std::vector<std::pair<std::string, int>> split_on_special_tokens(const std::string& text,
                                                                 const std::vector<std::string>& specials);

}  // namespace repa::text
