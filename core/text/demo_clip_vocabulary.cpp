#include "core/text/demo_clip_vocabulary.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/base/error.h"
#include "core/text/unicode.h"

namespace repa::text {

namespace fs = std::filesystem;

namespace {

// GPT-2's bytes_to_unicode in its own order: the printable bytes as themselves, then the others from U+0100.
std::vector<std::string> byte_symbols_in_vocab_order() {
  std::vector<int> bytes;
  for (int b = '!'; b <= '~'; ++b) bytes.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bytes.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bytes.push_back(b);
  std::vector<std::string> out;
  for (int b : bytes) out.push_back(unicode::encode_utf8(static_cast<char32_t>(b)));
  char32_t next = 256;
  for (int b = 0; b < 256; ++b)
    if (std::find(bytes.begin(), bytes.end(), b) == bytes.end()) out.push_back(unicode::encode_utf8(next++));
  return out;
}

// CLIP's BPE of one word: repeatedly merge every occurrence of the adjacent pair of lowest rank.
std::vector<std::string> bpe(const std::string& word, const std::map<std::string, std::size_t>& ranks) {
  std::vector<std::string> symbols;
  for (std::size_t i = 0; i < word.size(); ++i) symbols.push_back(word.substr(i, 1));
  symbols.back() += "</w>";
  while (symbols.size() > 1) {
    std::size_t best = ranks.size();
    std::string first, second;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = ranks.find(symbols[i] + " " + symbols[i + 1]);
      if (it != ranks.end() && it->second < best) {
        best = it->second;
        first = symbols[i];
        second = symbols[i + 1];
      }
    }
    if (best == ranks.size()) break;
    std::vector<std::string> merged;
    for (std::size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
        merged.push_back(first + second);
        ++i;
      } else {
        merged.push_back(symbols[i]);
      }
    }
    symbols = std::move(merged);
  }
  return symbols;
}

}  // namespace

ClipVocabulary make_clip_vocabulary(const std::vector<std::string>& words) {
  ClipVocabulary out;
  out.vocab = nlohmann::json::object();
  int64_t next_id = 0;
  const auto symbols = byte_symbols_in_vocab_order();
  for (const auto& s : symbols) out.vocab[s] = next_id++;
  for (const auto& s : symbols) out.vocab[s + "</w>"] = next_id++;
  std::map<std::string, std::size_t> ranks;
  for (const auto& word : words) {
    if (word.empty()) throw InputError("a CLIP vocabulary word is empty");
    for (unsigned char c : word)
      if (c < '!' || c > '~' || (c >= 'A' && c <= 'Z'))
        throw InputError("CLIP vocabulary word '" + word + "' is not lower-case printable ASCII");
    // A merge added last has the highest rank, so it only joins what the earlier merges leave: the words
    // already made single tokens keep their tokenization.
    for (auto pieces = bpe(word, ranks); pieces.size() > 1; pieces = bpe(word, ranks)) {
      ranks[pieces[0] + " " + pieces[1]] = out.merges.size();
      out.merges.push_back(pieces[0] + " " + pieces[1]);
      if (!out.vocab.contains(pieces[0] + pieces[1])) out.vocab[pieces[0] + pieces[1]] = next_id++;
    }
  }
  out.vocab["<|startoftext|>"] = next_id++;
  out.vocab["<|endoftext|>"] = next_id++;
  return out;
}

const std::vector<std::string>& demo_caption_words() {
  static const std::vector<std::string> words = {"a",       "large", "small", "red",    "green",      "blue",  "yellow",
                                                 "purple",  "cyan",  "disc",  "square", "triangle",   "ring",  "cross",
                                                 "striped", "in",    "the",   "centre", "upper",      "lower", "middle",
                                                 "on",      "left",  "right", "dark",   "background", ","};
  return words;
}

void write_demo_clip_tokenizer(const std::string& folder) {
  const auto vocabulary = make_clip_vocabulary(demo_caption_words());
  fs::create_directories(folder);
  std::ofstream vocab(fs::path(folder) / "vocab.json");
  vocab << vocabulary.vocab.dump() << "\n";
  std::ofstream merges(fs::path(folder) / "merges.txt");
  merges << "#version: 0.2\n";
  for (const auto& merge : vocabulary.merges) merges << merge << "\n";
  if (!vocab || !merges) throw Error("cannot write the demo CLIP tokenizer in '" + folder + "'");
}

}  // namespace repa::text
