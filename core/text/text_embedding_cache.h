// Text embeddings computed once per (encoder weights, tokenizer, max length, family spec, prompt) and kept as
// safetensors in the cache folder: <cache>/text_embeds-<settings hash>/<prompt hash>.safetensors. Filling
// loads the text encoders only when a prompt is missing and frees them before returning, so the training
// process holds embeddings, never encoders.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/data/feature_cache.h"
#include "core/text/text_conditioning.h"

namespace repa::text {

// A prompt and where it came from (a caption file, an image, a config key), for the messages.
struct PromptSource {
  std::string prompt;
  std::string source;
};

struct TextCacheFillReport {
  int64_t prompts = 0;   // distinct prompts asked for
  int64_t reused = 0;    // already in the cache
  int64_t computed = 0;  // encoded now (each prompt once, however often it occurs)
  double seconds = 0.0;
  int64_t encoder_parameters = 0;  // 0 when no encoder was loaded
  // Resident memory of the process: before the encoders were loaded, with them loaded, after they were freed.
  int64_t resident_before = 0, resident_loaded = 0, resident_after = 0;
  std::vector<std::string> warnings;  // prompts longer than an encoder keeps: one per source file
};

using EmbedderFactory = std::function<std::unique_ptr<TextEmbedder>()>;

class TextEmbeddingCache {
 public:
  // `root`: the run's cache folder; the settings (spec and the files' identities) name the sub-folder.
  TextEmbeddingCache(const std::string& root, TextConditioningSpec spec, std::string pipeline_folder);

  const std::string& folder() const { return cache_.folder(); }
  const TextConditioningSpec& spec() const { return spec_; }
  bool contains(const std::string& prompt) const;
  TextEmbedding load(const std::string& prompt) const;  // InputError naming the prompt when it is not cached
  TextEmbedding load_batch(const std::vector<std::string>& prompts) const;  // stacked (B, ...)

  // Encodes the prompts the cache lacks, `batch_size` at a time, with encoders from `make_embedder` (default:
  // TextEmbedder on the pipeline folder, CPU); progress(done, total) after each batch.
  TextCacheFillReport fill(const std::vector<PromptSource>& prompts, int batch_size,
                           const std::function<void(int64_t, int64_t)>& progress = {},
                           const EmbedderFactory& make_embedder = {}) const;

 private:
  TextConditioningSpec spec_;
  std::string pipeline_folder_;
  data::FeatureCache cache_;
};

// The process's resident set size in bytes (/proc/self/statm), 0 where unavailable.
int64_t resident_memory_bytes();

// Hands freed heap pages back to the kernel (glibc malloc_trim), so that freeing the encoders shows in the
// resident size despite keep_freed_memory's high trim threshold.
void release_free_heap();

}  // namespace repa::text
