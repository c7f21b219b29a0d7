// The caption of each training image, by SimpleTuner's caption_strategy: the file name ("filename": the stem,
// underscores as spaces), a sidecar text file ("textfile": image.png → image.txt, one caption per non-empty
// line), one prompt for every image ("instanceprompt"), or a Hugging Face image folder's metadata.jsonl
// ("metadata": {"file_name": ..., "text": ...} per line). "parquet" is refused with what to convert to.
#pragma once
#include <string>
#include <vector>

#include "core/data/image_folder.h"

namespace repa::data {

enum class CaptionStrategy { Filename, Textfile, InstancePrompt, Metadata };

struct CaptionOptions {
  CaptionStrategy strategy = CaptionStrategy::Filename;
  std::string instance_prompt;              // the caption of "instanceprompt", the prefix with prepend_instance_prompt
  bool prepend_instance_prompt = false;     // SimpleTuner: instance_prompt + " " + caption
  std::string prefix;                       // studio.caption_prefix: put before every caption as it is
  std::string source = "caption_strategy";  // the key or file named in messages

  // SimpleTuner's names ("instanceprompt", also "instance_prompt"), plus "metadata" / "jsonl". InputError naming
  // `key` for parquet, csv, huggingface and unknown values.
  static CaptionStrategy parse_strategy(const std::string& value, const std::string& key);
};

std::string to_string(CaptionStrategy strategy);

// A caption file's text, checked to be UTF-8 (InputError naming the file and the byte offset otherwise), with a
// leading byte-order mark and the trailing white space removed.
std::string read_caption_file(const std::string& path);

// The captions of every image of `folder`, in its order; each image has at least one. InputError naming the
// image and the file for a missing sidecar, an empty caption file, a metadata.jsonl line that is not JSON or
// lacks file_name/text, or an image metadata.jsonl does not list.
std::vector<std::vector<std::string>> read_captions(const ImageFolder& folder, const CaptionOptions& options);

}  // namespace repa::data
