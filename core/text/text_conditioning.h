// What a text-to-image family feeds its backbone from a caption, as data: which text encoders (CLIP or T5,
// by their pipeline folders), which hidden state, the token limit, the pooled embedding, the masks, and how
// several encoders combine. One TextConditioningSpec per family; TextEmbedder runs a spec on prompts.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::text {

enum class TextEncoderKind { Clip, T5 };

struct TextEncoderSpec {
  TextEncoderKind kind = TextEncoderKind::Clip;
  std::string encoder_folder = "text_encoder";  // inside the pipeline folder
  std::string tokenizer_folder = "tokenizer";
  int64_t max_length = 77;  // SimpleTuner's tokenizer_max_length default for this encoder
  // Which hidden state: 0 the encoder's last output (CLIP after its final LayerNorm); k > 0 the k-th from the
  // end of CLIP's hidden_states, before the LayerNorm (SDXL and SD3: 2, "penultimate").
  int hidden_from_end = 0;
  bool hidden = true;             // contributes a sequence (Flux's CLIP gives only its pooled vector)
  int sequence_group = 0;         // same group: concatenated on features (SDXL); groups: on the sequence (SD3)
  bool pooled = false;            // CLIP: text_embeds with a projection, pooler_output without
  bool mask_in_encoder = false;   // the attention mask goes into the encoder (PixArt's T5)
  bool mask_to_backbone = false;  // the backbone receives the mask (PixArt, Flux, Chroma)
  // The backbone's mask also keeps the first padding token (diffusers' ChromaPipeline: the end token's neighbour).
  bool mask_keeps_first_pad = false;
};

struct TextConditioningSpec {
  std::string family;
  std::vector<TextEncoderSpec> encoders;
  // SD3: each sequence group zero-padded on features to the widest one (CLIP's 2048 to T5's 4096) before the
  // groups are joined on the sequence; without it, groups of different widths are an error.
  bool pad_to_widest = false;
  // PixArt: every prompt lower-cased and stripped before tokenizing, as diffusers' PixArt pipeline does when it
  // does not clean captions (SimpleTuner encodes through it).
  bool lowercase_prompts = false;

  // sd1x, sd2x, sdxl, sd3, flux, chroma, pixart. InputError naming studio.text_conditioning for others.
  static TextConditioningSpec for_family(const std::string& family);
  nlohmann::json to_json() const;  // every field: part of the cache key
};

// One prompt's conditioning: "hidden" (L, D), "pooled" (P) when the spec pools, "mask" (L) int64 when the
// backbone takes one. Batches stack these.
using TextEmbedding = std::map<std::string, torch::Tensor>;

// What identifies a text encoder's or tokenizer's files without loading them: names, sizes and a content hash
// (whole files up to 64 MiB; for larger ones the safetensors header and 16 spread 1 MiB samples).
std::string folder_identity(const std::string& folder);

// A prompt that was longer than an encoder keeps.
struct LongPrompt {
  std::size_t index;  // into the prompts given to encode
  std::string encoder;
  int64_t tokens;  // untruncated, specials included
  int64_t max_length;
};

// The spec's tokenizers and encoders loaded from a pipeline folder, in fp32 on `device`.
class TextEmbedder {
 public:
  TextEmbedder(TextConditioningSpec spec, const std::string& pipeline_folder, torch::Device device = torch::kCPU);
  ~TextEmbedder();
  TextEmbedder(const TextEmbedder&) = delete;
  TextEmbedder& operator=(const TextEmbedder&) = delete;

  // Each prompt's conditioning (CPU, fp32). `long_prompts` receives the prompts an encoder truncated.
  std::vector<TextEmbedding> encode(const std::vector<std::string>& prompts,
                                    std::vector<LongPrompt>* long_prompts = nullptr);
  int64_t parameter_count() const;
  // Prompts encoded by every TextEmbedder of this process so far: what tests count to show a cache hit.
  static int64_t prompts_encoded();

 private:
  struct Encoder;
  TextConditioningSpec spec_;
  torch::Device device_;
  std::vector<std::unique_ptr<Encoder>> encoders_;
};

// The cache key of a spec on a pipeline folder: the spec, and each encoder's and tokenizer's identity.
nlohmann::json text_cache_settings(const TextConditioningSpec& spec, const std::string& pipeline_folder);

// Stacks per-prompt conditioning into a batch: (B, L, D), (B, P), (B, L).
TextEmbedding stack_text_embeddings(const std::vector<TextEmbedding>& items);

}  // namespace repa::text
