// The text side of a text-conditioned run: each image's captions (by caption_strategy, or its dataset in
// multidatabackend.json), the text-embedding cache filled before the first step (the encoders are then freed),
// and per step the batch's embeddings with a caption drawn per image and caption_dropout_probability applied.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/data/captions.h"
#include "core/text/text_embedding_cache.h"
#include "core/train/training_data.h"

namespace repa::train {

// The settings, made once from the resolved config.
struct CaptionConditioningOptions {
  text::TextConditioningSpec spec;   // studio.text_conditioning, tokenizer_max_length on its last encoder
  std::string text_encoder_path;     // studio.text_encoder_path: holds text_encoder*/ and tokenizer*/
  data::CaptionOptions captions;     // caption_strategy, instance_prompt, prepend_instance_prompt, prefix
  double dropout_probability = 0.0;  // caption_dropout_probability: the empty caption's embedding instead
  uint64_t seed = 0;
  int batch_size = 16;  // prompts per encoder call while filling
  // Prompts cached beside the captions: the validation prompts and the negative prompt of the samples.
  std::vector<std::string> extra_prompts;
  // Under data parallelism this rank encodes prompts i with i % shard_world == shard_rank (and the empty one,
  // which every rank reads at once); the run waits for every rank before reading the others' entries.
  int shard_rank = 0;
  int shard_world = 1;

  // InputError naming the key for a missing text_encoder_path, a probability outside [0,1], an unknown
  // family or caption strategy. A dataset read from multidatabackend.json brings its own caption settings.
  static CaptionConditioningOptions from_config(const nlohmann::json& config,
                                                const data::DataBackendConfig* backend = nullptr);
};

class CaptionConditioning {
 public:
  // Reads the captions of `data.folder` and fills the cache under data.cache_root (prompt-length warnings and
  // the resident memory before/after the encoders go to `report`).
  // `progress(done, total)`, when given, follows the encoding instead of the periodic report lines.
  CaptionConditioning(CaptionConditioningOptions options, const TrainingData& data, const Reporter& report,
                      const std::function<void(int64_t, int64_t)>& progress = {});

  // The text conditioning of images `indices` at `step`: "hidden" (B,L,D) (+ "pooled", "mask"), CPU fp32.
  text::TextEmbedding batch(const std::vector<int64_t>& indices, int64_t step) const;
  // The empty caption's conditioning, (1,L,D): what dropout and unconditional samples use.
  const text::TextEmbedding& unconditional() const { return unconditional_; }
  // Cached prompts (the captions, the empty one and extra_prompts) stacked: (B, L, D) ...
  text::TextEmbedding embeddings(const std::vector<std::string>& prompts) const { return cache_->load_batch(prompts); }
  // The caption image `index` is given at `step` ("" when dropped).
  std::string caption_at(int64_t index, int64_t step) const;

  int64_t width() const { return unconditional_.at("hidden").size(-1); }
  const text::TextCacheFillReport& fill_report() const { return fill_report_; }
  const std::vector<std::vector<std::string>>& captions() const { return captions_; }
  const std::string& cache_folder() const { return cache_->folder(); }

 private:
  CaptionConditioningOptions options_;
  std::vector<std::vector<std::string>> captions_;
  std::unique_ptr<text::TextEmbeddingCache> cache_;
  text::TextCacheFillReport fill_report_;
  text::TextEmbedding unconditional_;
};

}  // namespace repa::train
