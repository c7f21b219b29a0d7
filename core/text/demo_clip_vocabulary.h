// A small CLIP byte-level BPE vocabulary made on the spot, so the text-to-image demo needs no downloaded
// tokenizer: the 256 byte symbols of GPT-2's byte-to-unicode map and their "</w>" forms (every prompt still
// tokenizes), merges that make each given word one token, then <|startoftext|> and <|endoftext|>, in the order
// and merges.txt layout of CLIP's own files.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace repa::text {

struct ClipVocabulary {
  nlohmann::json vocab;             // token → id (vocab.json)
  std::vector<std::string> merges;  // "a b" in rank order (merges.txt after its "#version" line)
};

// The vocabulary for `words` (lower-case ASCII letters or punctuation; InputError otherwise): each becomes a
// single "word</w>" token under CLIP's merge-rank BPE.
ClipVocabulary make_clip_vocabulary(const std::vector<std::string>& words);

// The words of the demo dataset's captions ("a large red disc in the upper left, on a dark background").
const std::vector<std::string>& demo_caption_words();

// vocab.json and merges.txt of make_clip_vocabulary(demo_caption_words()) in `folder` (created).
void write_demo_clip_tokenizer(const std::string& folder);

}  // namespace repa::text
