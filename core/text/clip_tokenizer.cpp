#include "core/text/clip_tokenizer.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/error.h"
#include "core/text/unicode.h"

namespace repa::text {
namespace {

namespace fs = std::filesystem;

// CLIPTokenizer reads at most this many merges (49152 - 256 - 2), whatever merges.txt holds.
constexpr std::size_t kMaxMerges = 49152 - 256 - 2;

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(what + " '" + path + "' cannot be read (missing file?)");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
std::vector<std::string> make_byte_symbols() {
  std::vector<char32_t> code(256, 0);
  std::vector<bool> printable(256, false);
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) code[b] = printable[b] ? static_cast<char32_t>(b) : next++;
  std::vector<std::string> out(256);
  for (int b = 0; b < 256; ++b) out[b] = unicode::encode_utf8(code[b]);
  return out;
}

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// The regex's literals match with IGNORECASE: ASCII case, and U+017F (long s) for s.
bool literal_matches(char32_t c, char ascii) {
  const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(ascii)));
  if (c < 0x80) return std::tolower(static_cast<int>(c)) == lower;
  return lower == 's' && c == 0x17F;
}

std::size_t match_literal(const std::u32string& text, std::size_t at, const char* literal) {
  std::size_t n = std::char_traits<char>::length(literal);
  if (at + n > text.size()) return 0;
  for (std::size_t k = 0; k < n; ++k)
    if (!literal_matches(text[at + k], literal[k])) return 0;
  return n;
}

// One step of re.findall with CLIP's pattern
// <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (IGNORECASE):
// the length of the match at `at`, 0 when none starts there.
std::size_t match_at(const std::u32string& text, std::size_t at) {
  static const char* const literals[] = {
      "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  for (const char* literal : literals)
    if (std::size_t n = match_literal(text, at, literal)) return n;
  const char32_t c = text[at];
  if (unicode::is_letter(c)) {
    std::size_t end = at;
    while (end < text.size() && unicode::is_letter(text[end])) ++end;
    return end - at;
  }
  if (unicode::is_number(c)) return 1;
  // With IGNORECASE the negated class also refuses a character whose case variants are letters: U+0345 (it
  // folds to iota) is matched by no alternative and skipped like a space (scripts/gen_unicode_tables.py checks
  // that it is the only such character).
  const auto other = [](char32_t x) {
    return !unicode::is_regex_space(x) && !unicode::is_letter(x) && !unicode::is_number(x) && x != 0x345;
  };
  std::size_t end = at;
  while (end < text.size() && other(text[end])) ++end;
  return end - at;
}

// BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize joined by spaces, then lower():
// the text CLIP's regex runs on.
std::u32string clean_text(const std::u32string& text) {
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : text) {
    const bool tab_or_newline = c == U'\t' || c == U'\n' || c == U'\r';
    if (c == 0 || c == 0xFFFD || (!tab_or_newline && unicode::is_other(c))) continue;
    if (c == U' ' || tab_or_newline || unicode::is_space_separator(c)) {
      cleaned += U' ';
    } else if (is_cjk(c)) {
      cleaned += U' ';
      cleaned += c;
      cleaned += U' ';
    } else {
      cleaned += c;
    }
  }
  const std::u32string normalised = unicode::nfc(cleaned);
  // str.split() on Python's whitespace, each word lower-cased, joined with one space.
  std::u32string joined;
  std::size_t i = 0;
  while (i < normalised.size()) {
    while (i < normalised.size() && unicode::is_python_space(normalised[i])) ++i;
    std::size_t end = i;
    while (end < normalised.size() && !unicode::is_python_space(normalised[end])) ++end;
    if (end > i) {
      if (!joined.empty()) joined += U' ';
      joined += unicode::python_lower(normalised.substr(i, end - i));
    }
    i = end;
  }
  return unicode::python_lower(joined);
}

std::string json_token(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value.at("content").get<std::string>();
  return {};
}

}  // namespace

ClipTokenizer::ClipTokenizer(const std::string& vocab_path, const std::string& merges_path,
                             ClipTokenizerOptions options)
    : options_(std::move(options)), byte_symbols_(make_byte_symbols()) {
  try {
    const auto vocab = nlohmann::json::parse(read_file(vocab_path, "CLIP vocabulary"));
    if (!vocab.is_object()) throw InputError("CLIP vocabulary '" + vocab_path + "' is not a JSON object");
    for (const auto& [token, id] : vocab.items()) vocab_[token] = id.get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError("CLIP vocabulary '" + vocab_path + "' is not valid JSON: " + e.what());
  }
  for (const auto& symbol : byte_symbols_) {
    if (!vocab_.count(symbol) || !vocab_.count(symbol + "</w>"))
      throw InputError("CLIP vocabulary '" + vocab_path + "' lacks the byte symbol '" + symbol +
                       "' (or its '</w>' form): not a byte-level BPE vocabulary");
  }

  // As CLIPTokenizer: strip the file, skip its first line ("#version: ..."), keep at most kMaxMerges.
  std::string merges = read_file(merges_path, "CLIP merges");
  const auto first = merges.find_first_not_of(" \t\r\n\f\v");
  const auto last = merges.find_last_not_of(" \t\r\n\f\v");
  merges = first == std::string::npos ? std::string() : merges.substr(first, last - first + 1);
  std::istringstream lines(merges);
  std::string line;
  std::getline(lines, line);
  for (std::size_t rank = 0, number = 2; rank < kMaxMerges && std::getline(lines, line); ++rank, ++number) {
    std::istringstream parts(line);
    std::string a, b, extra;
    if (!(parts >> a >> b) || (parts >> extra))
      throw InputError("CLIP merges '" + merges_path + "' line " + std::to_string(number) + " is not two symbols: '" +
                       line + "'");
    if (!vocab_.count(a + b))
      throw InputError("CLIP merges '" + merges_path + "' line " + std::to_string(number) + " merges '" + a +
                       "' and '" + b + "' into '" + a + b + "', which the vocabulary '" + vocab_path +
                       "' lacks (vocab.json and merges.txt do not belong together)");
    merge_ranks_[a + " " + b] = static_cast<int>(rank);  // a repeated pair keeps its last rank, as dict(zip()) does
  }

  const auto special_id = [&](const std::string& token, const char* role) {
    auto it = vocab_.find(token);
    if (it == vocab_.end())
      throw InputError("CLIP " + std::string(role) + " token '" + token + "' is not in the vocabulary '" + vocab_path +
                       "'");
    return it->second;
  };
  bos_id_ = special_id(options_.bos_token, "bos");
  eos_id_ = special_id(options_.eos_token, "eos");
  unk_id_ = special_id(options_.unk_token, "unk");
  pad_id_ = special_id(options_.pad_token, "pad");
  for (const auto& token : {options_.bos_token, options_.eos_token, options_.unk_token, options_.pad_token})
    if (std::find(special_tokens_.begin(), special_tokens_.end(), token) == special_tokens_.end())
      special_tokens_.push_back(token);
}

ClipTokenizer ClipTokenizer::from_folder(const std::string& folder) {
  ClipTokenizerOptions options;
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    const fs::path path = fs::path(folder) / name;
    if (!fs::exists(path)) continue;
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(read_file(path.string(), "tokenizer settings"));
    } catch (const nlohmann::json::exception& e) {
      throw InputError("tokenizer settings '" + path.string() + "' are not valid JSON: " + e.what());
    }
    const auto take = [&](const char* key, std::string& into) {
      if (json.contains(key)) {
        const auto token = json_token(json.at(key));
        if (!token.empty()) into = token;
      }
    };
    take("bos_token", options.bos_token);
    take("eos_token", options.eos_token);
    take("unk_token", options.unk_token);
    take("pad_token", options.pad_token);
    // model_max_length is huge (1e30) when a folder leaves it unset; keep 77 then.
    if (json.contains("model_max_length") && json.at("model_max_length").is_number()) {
      const double value = json.at("model_max_length").get<double>();
      if (value >= 2 && value <= 1e6) options.max_length = static_cast<int64_t>(value);
    }
  }
  return ClipTokenizer((fs::path(folder) / "vocab.json").string(), (fs::path(folder) / "merges.txt").string(), options);
}

int64_t ClipTokenizer::token_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? unk_id_ : it->second;
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& word) const {
  // The two special tokens are cached as themselves in CLIPTokenizer and never split.
  if (word == "<|startoftext|>" || word == "<|endoftext|>") return {word};
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) return it->second;
  }
  std::vector<std::string> symbols;
  const std::u32string chars = unicode::decode_utf8(word);
  for (char32_t c : chars) symbols.push_back(unicode::encode_utf8(c));
  symbols.back() += "</w>";
  while (symbols.size() > 1) {
    int best = INT_MAX;
    std::size_t best_at = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merge_ranks_.find(symbols[i] + " " + symbols[i + 1]);
      if (it != merge_ranks_.end() && it->second < best) best = it->second, best_at = i;
    }
    if (best == INT_MAX) break;
    const std::string first = symbols[best_at], second = symbols[best_at + 1];
    std::vector<std::string> merged;
    merged.reserve(symbols.size());
    for (std::size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(symbols[i++]);
      }
    }
    symbols.swap(merged);
  }
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() < 1000000) cache_->words.emplace(word, symbols);  // bounded for endless streams
  return symbols;
}

void ClipTokenizer::tokenize_chunk(const std::string& chunk, std::vector<std::string>& out) const {
  const std::u32string text = clean_text(unicode::decode_utf8(chunk, "prompt"));
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = match_at(text, i);
    if (n == 0) {
      ++i;
      continue;
    }
    std::string word;
    for (unsigned char byte : unicode::encode_utf8(text.substr(i, n))) word += byte_symbols_[byte];
    for (auto& token : bpe(word)) out.push_back(std::move(token));
    i += n;
  }
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& prompt) const {
  std::vector<std::string> out;
  for (const auto& [piece, special] : split_on_special_tokens(prompt, special_tokens_)) {
    if (special >= 0) {
      out.push_back(piece);
    } else {
      tokenize_chunk(piece, out);
    }
  }
  return out;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& prompt) const {
  std::vector<int64_t> ids{bos_id_};
  for (const auto& token : tokenize(prompt)) ids.push_back(token_id(token));
  ids.push_back(eos_id_);
  return ids;
}

TokenBatch ClipTokenizer::operator()(const std::vector<std::string>& prompts, int64_t max_length) const {
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(prompts.size());
  for (const auto& prompt : prompts) ids.push_back(encode(prompt));
  return pad_and_truncate(ids, max_length > 0 ? max_length : options_.max_length, pad_id_);
}

}  // namespace repa::text
