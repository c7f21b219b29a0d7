#include "core/text/token_batch.h"

#include "core/base/error.h"

namespace repa::text {

std::vector<std::size_t> TokenBatch::truncated() const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < untruncated_lengths.size(); ++i)
    if (untruncated_lengths[i] > max_length) out.push_back(i);
  return out;
}

TokenBatch pad_and_truncate(const std::vector<std::vector<int64_t>>& ids, int64_t max_length, int64_t pad_id) {
  if (max_length < 2) throw InputError("tokenizer max_length must be at least 2, got " + std::to_string(max_length));
  TokenBatch batch;
  batch.max_length = max_length;
  const auto n = static_cast<int64_t>(ids.size());
  batch.input_ids = torch::full({n, max_length}, pad_id, torch::kLong);
  batch.attention_mask = torch::zeros({n, max_length}, torch::kLong);
  auto id_view = batch.input_ids.accessor<int64_t, 2>();
  auto mask_view = batch.attention_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& row = ids[i];
    const auto length = static_cast<int64_t>(row.size());
    batch.untruncated_lengths.push_back(length);
    const int64_t kept = std::min(length, max_length);
    for (int64_t j = 0; j < kept; ++j) {
      id_view[i][j] = row[j];
      mask_view[i][j] = 1;
    }
    if (length > max_length) id_view[i][max_length - 1] = row.back();
  }
  return batch;
}

std::vector<std::pair<std::string, int>> split_on_special_tokens(const std::string& text,
                                                                 const std::vector<std::string>& specials) {
  std::vector<std::pair<std::string, int>> out;
  std::size_t start = 0, i = 0;
  while (i < text.size()) {
    int best = -1;
    for (std::size_t s = 0; s < specials.size(); ++s) {
      const auto& token = specials[s];
      if (!token.empty() && text.compare(i, token.size(), token) == 0 &&
          (best < 0 || token.size() > specials[best].size()))
        best = static_cast<int>(s);
    }
    if (best < 0) {
      ++i;
      continue;
    }
    if (i > start) out.emplace_back(text.substr(start, i - start), -1);
    out.emplace_back(specials[best], best);
    i += specials[best].size();
    start = i;
  }
  if (start < text.size()) out.emplace_back(text.substr(start), -1);
  return out;
}

}  // namespace repa::text
