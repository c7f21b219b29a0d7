#include "core/text/text_embedding_cache.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/base/error.h"
#include "core/data/image_folder.h"

namespace repa::text {

int64_t resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

void release_free_heap() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

TextEmbeddingCache::TextEmbeddingCache(const std::string& root, TextConditioningSpec spec, std::string pipeline_folder)
    : spec_(std::move(spec)),
      pipeline_folder_(std::move(pipeline_folder)),
      cache_(root, "text_embeds", text_cache_settings(spec_, pipeline_folder_)) {}

bool TextEmbeddingCache::contains(const std::string& prompt) const {
  return cache_.contains(data::content_hash(prompt));
}

TextEmbedding TextEmbeddingCache::load(const std::string& prompt) const {
  const auto key = data::content_hash(prompt);
  if (!cache_.contains(key))
    throw InputError("the text-embedding cache " + cache_.folder() + " has no entry for the prompt \"" + prompt +
                     "\" (run repa-train cache, or let the run fill it)");
  return cache_.load(key);
}

TextEmbedding TextEmbeddingCache::load_batch(const std::vector<std::string>& prompts) const {
  std::vector<TextEmbedding> items;
  items.reserve(prompts.size());
  for (const auto& prompt : prompts) items.push_back(load(prompt));
  return stack_text_embeddings(items);
}

TextCacheFillReport TextEmbeddingCache::fill(const std::vector<PromptSource>& prompts, int batch_size,
                                             const std::function<void(int64_t, int64_t)>& progress,
                                             const EmbedderFactory& make_embedder) const {
  const auto start = std::chrono::steady_clock::now();
  TextCacheFillReport report;
  std::vector<const PromptSource*> missing;
  std::set<std::string> seen;
  for (const auto& item : prompts) {
    if (!seen.insert(item.prompt).second) continue;
    if (contains(item.prompt))
      ++report.reused;
    else
      missing.push_back(&item);
  }
  report.prompts = static_cast<int64_t>(seen.size());
  if (!missing.empty()) {
    report.resident_before = resident_memory_bytes();
    {
      auto embedder =
          make_embedder ? make_embedder() : std::make_unique<TextEmbedder>(spec_, pipeline_folder_, torch::kCPU);
      report.encoder_parameters = embedder->parameter_count();
      report.resident_loaded = resident_memory_bytes();
      std::set<std::string> warned;
      const std::size_t step = static_cast<std::size_t>(std::max(1, batch_size));
      for (std::size_t begin = 0; begin < missing.size(); begin += step) {
        const std::size_t end = std::min(missing.size(), begin + step);
        std::vector<std::string> batch;
        for (std::size_t i = begin; i < end; ++i) batch.push_back(missing[i]->prompt);
        std::vector<LongPrompt> long_prompts;
        const auto embeddings = embedder->encode(batch, &long_prompts);
        for (std::size_t i = 0; i < batch.size(); ++i) cache_.store(data::content_hash(batch[i]), embeddings[i]);
        for (const auto& cut : long_prompts) {
          const auto& source = missing[begin + cut.index]->source;
          if (!warned.insert(source).second) continue;
          report.warnings.push_back(source + ": a prompt of " + std::to_string(cut.tokens) + " tokens is longer than " +
                                    cut.encoder + " keeps (" + std::to_string(cut.max_length) +
                                    "); it is cut to the limit");
        }
        report.computed += static_cast<int64_t>(batch.size());
        if (progress) progress(report.computed, static_cast<int64_t>(missing.size()));
      }
    }  // the encoders are freed here
    release_free_heap();
    report.resident_after = resident_memory_bytes();
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace repa::text
