#include "core/text/text_conditioning.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/base/error.h"
#include "core/base/generator_scope.h"
#include "core/data/image_folder.h"
#include "core/text/clip_text_model.h"
#include "core/text/clip_tokenizer.h"
#include "core/text/t5_encoder.h"
#include "core/text/t5_tokenizer.h"
#include "core/text/unicode.h"

namespace repa::text {

namespace fs = std::filesystem;

namespace {

TextEncoderSpec clip(const char* encoder, const char* tokenizer, int hidden_from_end, bool pooled) {
  TextEncoderSpec spec;
  spec.encoder_folder = encoder;
  spec.tokenizer_folder = tokenizer;
  spec.hidden_from_end = hidden_from_end;
  spec.pooled = pooled;
  return spec;
}

TextEncoderSpec t5(const char* encoder, const char* tokenizer, int64_t max_length, int group) {
  TextEncoderSpec spec;
  spec.kind = TextEncoderKind::T5;
  spec.encoder_folder = encoder;
  spec.tokenizer_folder = tokenizer;
  spec.max_length = max_length;
  spec.sequence_group = group;
  return spec;
}

// A file's bytes as the cache key sees them: all of a small file, the head and spread samples of a large one.
std::string file_fingerprint(const fs::path& path) {
  constexpr std::uintmax_t kWhole = 64ull << 20, kSample = 1ull << 20;
  const auto size = fs::file_size(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("'" + path.string() + "' cannot be read");
  std::string bytes;
  auto read_at = [&](std::uintmax_t offset, std::uintmax_t count) {
    std::string chunk(static_cast<std::size_t>(count), '\0');
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(chunk.data(), static_cast<std::streamsize>(count));
    bytes += chunk.substr(0, static_cast<std::size_t>(in.gcount()));
    in.clear();
  };
  if (size <= kWhole) {
    read_at(0, size);
  } else {
    read_at(0, kSample);  // the safetensors header: every name, dtype, shape and offset
    for (int k = 1; k <= 16; ++k) read_at((size - kSample) / 16 * k, kSample);
  }
  return data::content_hash(bytes);
}

std::atomic<int64_t> encoded_prompts{0};

}  // namespace

int64_t TextEmbedder::prompts_encoded() {
  return encoded_prompts.load();
}

TextConditioningSpec TextConditioningSpec::for_family(const std::string& family) {
  TextConditioningSpec spec;
  spec.family = family;
  if (family == "sd1x" || family == "sd2x") {
    spec.encoders = {clip("text_encoder", "tokenizer", 0, false)};
  } else if (family == "sdxl") {
    spec.encoders = {clip("text_encoder", "tokenizer", 2, false), clip("text_encoder_2", "tokenizer_2", 2, true)};
  } else if (family == "sd3") {
    spec.encoders = {clip("text_encoder", "tokenizer", 2, true), clip("text_encoder_2", "tokenizer_2", 2, true),
                     t5("text_encoder_3", "tokenizer_3", 154, 1)};
    spec.pad_to_widest = true;
  } else if (family == "flux") {
    TextEncoderSpec pooled_clip = clip("text_encoder", "tokenizer", 0, true);
    pooled_clip.hidden = false;
    // The T5 mask is cached as SimpleTuner caches it; the backbone uses it under flux_attention_masked_training.
    TextEncoderSpec states = t5("text_encoder_2", "tokenizer_2", 512, 0);
    states.mask_to_backbone = true;
    spec.encoders = {pooled_clip, states};
  } else if (family == "chroma") {
    TextEncoderSpec encoder = t5("text_encoder", "tokenizer", 512, 0);
    encoder.mask_in_encoder = encoder.mask_to_backbone = encoder.mask_keeps_first_pad = true;
    spec.encoders = {encoder};
  } else if (family == "pixart") {
    TextEncoderSpec encoder = t5("text_encoder", "tokenizer", 300, 0);
    encoder.mask_in_encoder = encoder.mask_to_backbone = true;
    spec.encoders = {encoder};
    spec.lowercase_prompts = true;
  } else {
    throw InputError("studio.text_conditioning '" + family +
                     "' is unknown (sd1x, sd2x, sdxl, sd3, flux, chroma, pixart)");
  }
  return spec;
}

nlohmann::json TextConditioningSpec::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : encoders)
    list.push_back({{"kind", e.kind == TextEncoderKind::Clip ? "clip" : "t5"},
                    {"encoder", e.encoder_folder},
                    {"tokenizer", e.tokenizer_folder},
                    {"max_length", e.max_length},
                    {"hidden_from_end", e.hidden_from_end},
                    {"hidden", e.hidden},
                    {"sequence_group", e.sequence_group},
                    {"pooled", e.pooled},
                    {"mask_in_encoder", e.mask_in_encoder},
                    {"mask_to_backbone", e.mask_to_backbone},
                    {"mask_keeps_first_pad", e.mask_keeps_first_pad}});
  nlohmann::json out = {{"family", family}, {"encoders", list}, {"pad_to_widest", pad_to_widest}};
  if (lowercase_prompts) out["lowercase_prompts"] = true;  // absent otherwise: the other families' keys stay
  return out;
}

std::string folder_identity(const std::string& folder) {
  if (!fs::is_directory(folder)) throw InputError("folder '" + folder + "' does not exist");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::string summary;
  for (const auto& file : files)
    summary +=
        file.filename().string() + ":" + std::to_string(fs::file_size(file)) + ":" + file_fingerprint(file) + "\n";
  return data::content_hash(summary);
}

nlohmann::json text_cache_settings(const TextConditioningSpec& spec, const std::string& pipeline_folder) {
  nlohmann::json identities = nlohmann::json::array();
  for (const auto& e : spec.encoders)
    identities.push_back({{"encoder", folder_identity((fs::path(pipeline_folder) / e.encoder_folder).string())},
                          {"tokenizer", folder_identity((fs::path(pipeline_folder) / e.tokenizer_folder).string())}});
  return {{"spec", spec.to_json()}, {"identities", identities}, {"dtype", "float32"}};
}

struct TextEmbedder::Encoder {
  TextEncoderSpec spec;
  std::unique_ptr<ClipTokenizer> clip_tokenizer;
  std::unique_ptr<T5Tokenizer> t5_tokenizer;
  ClipTextModel clip{nullptr};
  T5EncoderModel t5{nullptr};

  TokenBatch tokenize(const std::vector<std::string>& prompts) const {
    return clip_tokenizer ? (*clip_tokenizer)(prompts, spec.max_length) : (*t5_tokenizer)(prompts, spec.max_length);
  }
};

TextEmbedder::TextEmbedder(TextConditioningSpec spec, const std::string& pipeline_folder, torch::Device device)
    : spec_(std::move(spec)), device_(device) {
  if (spec_.encoders.empty()) throw InputError("text conditioning '" + spec_.family + "' names no text encoder");
  // Building an encoder initialises its modules from the global generator before the weights replace them. A
  // run builds encoders only when its text cache lacks a prompt, so the draws are undone: a run on a warm cache
  // and one on a cold cache then continue with the same random stream.
  GeneratorScope keep_stream;
  for (const auto& e : spec_.encoders) {
    auto encoder = std::make_unique<Encoder>();
    encoder->spec = e;
    const std::string tokenizer = (fs::path(pipeline_folder) / e.tokenizer_folder).string();
    const std::string weights = (fs::path(pipeline_folder) / e.encoder_folder).string();
    if (!fs::is_directory(tokenizer))
      throw InputError("text conditioning '" + spec_.family + "' needs the tokenizer folder '" + tokenizer + "'");
    if (e.kind == TextEncoderKind::Clip) {
      encoder->clip_tokenizer = std::make_unique<ClipTokenizer>(ClipTokenizer::from_folder(tokenizer));
      encoder->clip = load_clip_text_model(weights);
      const auto positions = encoder->clip->config().max_position_embeddings;
      if (e.max_length > positions)
        throw InputError("tokenizer_max_length " + std::to_string(e.max_length) + " exceeds the " +
                         std::to_string(positions) + " positions of the CLIP text encoder in '" + weights + "'");
      if (e.hidden_from_end > encoder->clip->config().num_hidden_layers)
        throw InputError("'" + weights + "' has " + std::to_string(encoder->clip->config().num_hidden_layers) +
                         " layers; hidden state " + std::to_string(e.hidden_from_end) + " from the end does not exist");
      encoder->clip->to(device_);
      encoder->clip->eval();
    } else {
      T5TokenizerOptions options;
      options.max_length = e.max_length;
      encoder->t5_tokenizer = std::make_unique<T5Tokenizer>(T5Tokenizer::from_folder(tokenizer, options));
      encoder->t5 = load_t5_encoder(weights);
      encoder->t5->to(device_);
      encoder->t5->eval();
    }
    encoders_.push_back(std::move(encoder));
  }
}

TextEmbedder::~TextEmbedder() = default;

int64_t TextEmbedder::parameter_count() const {
  int64_t n = 0;
  for (const auto& e : encoders_) {
    const auto parameters = e->clip ? e->clip->parameters() : e->t5->parameters();
    for (const auto& p : parameters) n += p.numel();
  }
  return n;
}

std::vector<TextEmbedding> TextEmbedder::encode(const std::vector<std::string>& prompts,
                                                std::vector<LongPrompt>* long_prompts) {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(prompts.size());
  encoded_prompts += n;
  std::vector<std::string> texts = prompts;
  if (spec_.lowercase_prompts)
    for (auto& text : texts) {
      // Python's text.lower().strip(): full Unicode case mapping, str.isspace() whitespace.
      auto chars = unicode::python_lower(unicode::decode_utf8(text, "prompt"));
      std::size_t begin = 0, end = chars.size();
      while (begin < end && unicode::is_python_space(chars[begin])) ++begin;
      while (end > begin && unicode::is_python_space(chars[end - 1])) --end;
      text = unicode::encode_utf8(chars.substr(begin, end - begin));
    }
  std::map<int, std::vector<torch::Tensor>> hidden_groups, mask_groups;
  std::vector<torch::Tensor> pooled;
  for (const auto& e : encoders_) {
    const auto tokens = e->tokenize(texts);
    if (long_prompts)
      for (std::size_t i : tokens.truncated())
        long_prompts->push_back({i, e->spec.encoder_folder, tokens.untruncated_lengths[i], tokens.max_length});
    const auto ids = tokens.input_ids.to(device_);
    const auto mask = tokens.attention_mask.to(device_);
    const auto encoder_mask = e->spec.mask_in_encoder ? mask : torch::Tensor();
    torch::Tensor hidden, pooled_one;
    if (e->clip) {
      auto out = e->clip->forward(ids, encoder_mask);
      const auto& states = out.hidden_states;
      hidden = e->spec.hidden_from_end == 0 ? out.last_hidden_state
                                            : states[states.size() - static_cast<std::size_t>(e->spec.hidden_from_end)];
      pooled_one = out.text_embeds.defined() ? out.text_embeds : out.pooler_output;
    } else {
      hidden = e->t5->forward(ids, encoder_mask).last_hidden_state;
    }
    if (e->spec.pooled) {
      if (!pooled_one.defined())
        throw InputError("text conditioning '" + spec_.family + "': the T5 encoder '" + e->spec.encoder_folder +
                         "' has no pooled output");
      pooled.push_back(pooled_one.to(torch::kCPU, torch::kFloat32));
    }
    if (!e->spec.hidden) continue;
    hidden_groups[e->spec.sequence_group].push_back(hidden.to(torch::kCPU, torch::kFloat32));
    auto& group_mask = mask_groups[e->spec.sequence_group];
    if (e->spec.mask_to_backbone && e->spec.mask_keeps_first_pad) {
      const auto kept = mask.sum(1, true);
      group_mask = {torch::arange(mask.size(1), mask.options()).unsqueeze(0).le(kept).to(torch::kInt64).cpu()};
    } else if (e->spec.mask_to_backbone) {
      group_mask = {mask.to(torch::kCPU)};
    }
    if (group_mask.empty()) group_mask = {torch::ones_like(mask).to(torch::kCPU)};
  }
  std::vector<torch::Tensor> sequence, masks;
  int64_t widest = 0;
  for (auto& [group, parts] : hidden_groups) {
    sequence.push_back(torch::cat(parts, -1));
    widest = std::max(widest, sequence.back().size(-1));
    masks.push_back(mask_groups[group].front());
  }
  if (spec_.pad_to_widest)
    for (auto& part : sequence) part = torch::constant_pad_nd(part, {0, widest - part.size(-1)});
  if (sequence.size() > 1)
    for (const auto& part : sequence)
      if (part.size(-1) != sequence.front().size(-1))
        throw InputError("text conditioning '" + spec_.family + "': the encoders' widths " +
                         std::to_string(sequence.front().size(-1)) + " and " + std::to_string(part.size(-1)) +
                         " differ, so their sequences cannot be joined");
  const bool wants_mask = std::any_of(spec_.encoders.begin(), spec_.encoders.end(),
                                      [](const TextEncoderSpec& e) { return e.mask_to_backbone; });
  torch::Tensor hidden = sequence.empty() ? torch::Tensor() : torch::cat(sequence, 1);
  torch::Tensor mask = wants_mask ? torch::cat(masks, 1).to(torch::kInt64) : torch::Tensor();
  torch::Tensor pooled_all = pooled.empty() ? torch::Tensor() : torch::cat(pooled, -1);
  std::vector<TextEmbedding> out(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto& item = out[static_cast<std::size_t>(i)];
    if (hidden.defined()) item["hidden"] = hidden[i].contiguous();
    if (pooled_all.defined()) item["pooled"] = pooled_all[i].contiguous();
    if (mask.defined()) item["mask"] = mask[i].contiguous();
  }
  return out;
}

TextEmbedding stack_text_embeddings(const std::vector<TextEmbedding>& items) {
  TextEmbedding out;
  if (items.empty()) return out;
  for (const auto& [name, first] : items.front()) {
    std::vector<torch::Tensor> parts;
    for (const auto& item : items) parts.push_back(item.at(name));
    out[name] = torch::stack(parts);
  }
  return out;
}

}  // namespace repa::text
