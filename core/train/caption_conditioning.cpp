#include "core/train/caption_conditioning.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/data/epoch_shuffle.h"
#include "core/train/config_values.h"

namespace repa::train {

namespace fs = std::filesystem;

CaptionConditioningOptions CaptionConditioningOptions::from_config(const nlohmann::json& config,
                                                                   const data::DataBackendConfig* backend) {
  const auto& studio = studio_settings(config);
  CaptionConditioningOptions out;
  out.spec = text::TextConditioningSpec::for_family(text_or(studio, "text_conditioning", "sd1x"));
  const int64_t max_length = integer_or(config, "tokenizer_max_length", 0);
  if (max_length < 0) throw InputError("tokenizer_max_length must be positive, got " + std::to_string(max_length));
  if (max_length > 0) out.spec.encoders.back().max_length = max_length;
  out.text_encoder_path = text_or(studio, "text_encoder_path", "");
  if (out.text_encoder_path.empty())
    throw InputError(
        "studio.text_encoder_path is empty: a text-conditioned run (studio.architecture "
        "\"unet2d_condition\") needs the folder holding its text_encoder/ and tokenizer/ folders");
  if (backend) {
    out.captions = backend->image.captions;
  } else {
    out.captions.strategy =
        data::CaptionOptions::parse_strategy(text_or(config, "caption_strategy", "filename"), "caption_strategy");
    out.captions.instance_prompt = text_or(config, "instance_prompt", "");
    out.captions.prepend_instance_prompt = flag_or(config, "prepend_instance_prompt", false);
    if (flag_or(config, "only_instance_prompt", false)) out.captions.strategy = data::CaptionStrategy::InstancePrompt;
  }
  out.captions.prefix = text_or(studio, "caption_prefix", "");
  out.dropout_probability = number_or(config, "caption_dropout_probability", 0.0);
  if (!(out.dropout_probability >= 0.0 && out.dropout_probability <= 1.0))
    throw InputError("caption_dropout_probability must be within [0, 1], got " +
                     std::to_string(out.dropout_probability));
  out.seed = static_cast<uint64_t>(integer_or(config, "seed", 0));
  out.batch_size = static_cast<int>(std::max<int64_t>(1, integer_or(config, "train_batch_size", 16)));
  return out;
}

namespace {

std::string source_of(const data::CaptionOptions& options, const data::ImageRecord& image, const std::string& root) {
  switch (options.strategy) {
    case data::CaptionStrategy::Textfile:
      return fs::path(image.path).replace_extension(".txt").string();
    case data::CaptionStrategy::Metadata:
      return (fs::path(root) / "metadata.jsonl").string();
    case data::CaptionStrategy::InstancePrompt:
      return "instance_prompt";
    case data::CaptionStrategy::Filename:
      break;
  }
  return image.path;
}

std::string megabytes(int64_t bytes) {
  return std::to_string(bytes / (1024 * 1024)) + " MiB";
}

}  // namespace

CaptionConditioning::CaptionConditioning(CaptionConditioningOptions options, const TrainingData& data,
                                         const Reporter& report,
                                         const std::function<void(int64_t, int64_t)>& progress_callback)
    : options_(std::move(options)) {
  captions_ = data::read_captions(data.folder, options_.captions);
  std::vector<text::PromptSource> prompts = {{"", "the empty caption"}};
  for (std::size_t i = 0; i < captions_.size(); ++i)
    for (const auto& caption : captions_[i])
      prompts.push_back({caption, source_of(options_.captions, data.folder.images[i], data.folder.root)});
  for (const auto& prompt : options_.extra_prompts) prompts.push_back({prompt, "a validation prompt"});
  if (options_.shard_world > 1) {
    std::vector<text::PromptSource> share;
    for (std::size_t i = 0; i < prompts.size(); ++i)
      if (i == 0 || static_cast<int>(i % static_cast<std::size_t>(options_.shard_world)) == options_.shard_rank)
        share.push_back(prompts[i]);
    prompts = std::move(share);
  }
  cache_ = std::make_unique<text::TextEmbeddingCache>(data.cache_root, options_.spec, options_.text_encoder_path);
  auto progress = [&](int64_t done, int64_t total) {
    if (progress_callback) return progress_callback(done, total);
    if (report && (done == total || done % 256 < 16))
      report("info", "caching text embeddings: " + std::to_string(done) + "/" + std::to_string(total));
  };
  fill_report_ = cache_->fill(prompts, options_.batch_size, progress);
  if (report) {
    for (const auto& warning : fill_report_.warnings) report("warning", warning);
    std::string memory;
    if (fill_report_.computed > 0)
      memory = "; resident memory " + megabytes(fill_report_.resident_before) + " before the text encoders, " +
               megabytes(fill_report_.resident_loaded) + " with them, " + megabytes(fill_report_.resident_after) +
               " after they were freed";
    report("info", "text-embedding cache " + cache_->folder() + ": " + std::to_string(fill_report_.prompts) +
                       " prompts, " + std::to_string(fill_report_.reused) + " reused, " +
                       std::to_string(fill_report_.computed) + " encoded" + memory);
  }
  unconditional_ = cache_->load_batch({""});
}

std::string CaptionConditioning::caption_at(int64_t index, int64_t step) const {
  const auto& choices = captions_.at(static_cast<std::size_t>(index));
  const uint64_t draw = data::mix_seed(options_.seed, static_cast<uint64_t>(step), static_cast<uint64_t>(index));
  // Two independent draws: whether the caption is dropped, and which of the image's captions it is.
  const double dropout = static_cast<double>(data::mix_seed(draw, 1) >> 11) / static_cast<double>(1ull << 53);
  if (dropout < options_.dropout_probability) return "";
  return choices[data::mix_seed(draw, 2) % choices.size()];
}

text::TextEmbedding CaptionConditioning::batch(const std::vector<int64_t>& indices, int64_t step) const {
  std::vector<std::string> prompts;
  prompts.reserve(indices.size());
  for (int64_t index : indices) prompts.push_back(caption_at(index, step));
  return cache_->load_batch(prompts);
}

}  // namespace repa::train
