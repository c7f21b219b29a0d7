#include "core/text/sentencepiece_model.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/base/error.h"

namespace repa::text {
namespace {

// Protocol-buffer wire format, as much as ModelProto needs.
class WireReader {
 public:
  WireReader(const char* data, std::size_t size, const std::string& source)
      : p_(data), end_(data + size), source_(source) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated varint");
      const auto byte = static_cast<uint8_t>(*p_++);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("overlong varint");
    return 0;
  }
  std::string bytes() {
    const auto size = varint();
    if (size > static_cast<uint64_t>(end_ - p_)) fail("field runs past the end");
    std::string out(p_, size);
    p_ += size;
    return out;
  }
  float fixed32_float() {
    if (end_ - p_ < 4) fail("truncated fixed32");
    float value;
    std::memcpy(&value, p_, 4);  // little-endian, as the file
    p_ += 4;
    return value;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        break;
      case 1:
        advance(8);
        break;
      case 2:
        bytes();
        break;
      case 5:
        advance(4);
        break;
      default:
        fail("unsupported wire type " + std::to_string(wire_type));
    }
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError("sentencepiece model '" + source_ + "' is malformed: " + what);
  }

 private:
  void advance(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) fail("truncated field");
    p_ += n;
  }
  const char* p_;
  const char* end_;
  const std::string& source_;
};

// sentencepiece's one-character length from the lead byte (its OneCharLen table).
std::size_t one_char_length(unsigned char lead) {
  static const uint8_t table[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return table[lead >> 4];
}

// The length of one valid UTF-8 character at `at`, or 0 when the bytes there are not valid UTF-8.
std::size_t valid_utf8_length(const std::string& s, std::size_t at) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[at + k]); };
  const std::size_t left = s.size() - at;
  const auto trail = [&](std::size_t k) { return (byte(k) & 0xC0) == 0x80; };
  const auto valid = [](uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); };
  if (byte(0) < 0x80) return 1;
  if (left >= 2 && (byte(0) & 0xE0) == 0xC0) {
    const uint32_t c = ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
    if (trail(1) && c >= 0x80 && valid(c)) return 2;
  } else if (left >= 3 && (byte(0) & 0xF0) == 0xE0) {
    const uint32_t c = ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    if (trail(1) && trail(2) && c >= 0x800 && valid(c)) return 3;
  } else if (left >= 4 && (byte(0) & 0xF8) == 0xF0) {
    const uint32_t c = ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
    if (trail(1) && trail(2) && trail(3) && c >= 0x10000 && valid(c)) return 4;
  }
  return 0;
}

const char kSpaceSymbol[] = "\xe2\x96\x81";  // U+2581, what escaped whitespace becomes

std::string read_binary(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(what + " '" + path + "' cannot be read (missing file?)");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string base64_decode(const std::string& text, const std::string& path) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const auto at = alphabet.find(c);
    if (at == std::string::npos)
      throw InputError("tokenizer '" + path + "': precompiled_charsmap is not base64 (character '" + c + "')");
    buffer = (buffer << 6) | static_cast<uint32_t>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

const nlohmann::json* find_precompiled(const nlohmann::json& normalizer) {
  if (!normalizer.is_object()) return nullptr;
  const auto type = normalizer.contains("type") && normalizer.at("type").is_string()
                        ? normalizer.at("type").get<std::string>()
                        : std::string();
  if (type == "Precompiled") return &normalizer;
  if (type == "Sequence" && normalizer.contains("normalizers"))
    for (const auto& inner : normalizer.at("normalizers"))
      if (const auto* found = find_precompiled(inner)) return found;
  return nullptr;
}

}  // namespace

SentencePieceModel SentencePieceModel::from_file(const std::string& path) {
  return from_proto(read_binary(path, "sentencepiece model"), path);
}

SentencePieceModel SentencePieceModel::from_proto(const std::string& bytes, const std::string& source) {
  SentencePieceModel model;
  std::string charsmap;
  int model_type = 1;
  bool byte_fallback = false;
  WireReader reader(bytes.data(), bytes.size(), source);
  while (!reader.done()) {
    const auto key = reader.varint();
    const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (field == 1 && wire == 2) {  // pieces
      const auto message = reader.bytes();
      WireReader piece_reader(message.data(), message.size(), source);
      Piece piece;
      while (!piece_reader.done()) {
        const auto k = piece_reader.varint();
        const int f = static_cast<int>(k >> 3), w = static_cast<int>(k & 7);
        if (f == 1 && w == 2) {
          piece.text = piece_reader.bytes();
        } else if (f == 2 && w == 5) {
          piece.score = piece_reader.fixed32_float();
        } else if (f == 3 && w == 0) {
          piece.type = static_cast<PieceType>(piece_reader.varint());
        } else {
          piece_reader.skip(w);
        }
      }
      model.pieces_.push_back(std::move(piece));
    } else if (field == 2 && wire == 2) {  // trainer_spec
      const auto message = reader.bytes();
      WireReader spec(message.data(), message.size(), source);
      while (!spec.done()) {
        const auto k = spec.varint();
        const int f = static_cast<int>(k >> 3), w = static_cast<int>(k & 7);
        if (f == 3 && w == 0) {
          model_type = static_cast<int>(spec.varint());
        } else if (f == 24 && w == 0) {
          model.treat_whitespace_as_suffix_ = spec.varint() != 0;
        } else if (f == 35 && w == 0) {
          byte_fallback = spec.varint() != 0;
        } else {
          spec.skip(w);
        }
      }
    } else if (field == 3 && wire == 2) {  // normalizer_spec
      const auto message = reader.bytes();
      WireReader spec(message.data(), message.size(), source);
      while (!spec.done()) {
        const auto k = spec.varint();
        const int f = static_cast<int>(k >> 3), w = static_cast<int>(k & 7);
        if (f == 2 && w == 2) {
          charsmap = spec.bytes();
        } else if (f == 3 && w == 0) {
          model.add_dummy_prefix_ = spec.varint() != 0;
        } else if (f == 4 && w == 0) {
          model.remove_extra_whitespaces_ = spec.varint() != 0;
        } else if (f == 5 && w == 0) {
          model.escape_whitespaces_ = spec.varint() != 0;
        } else {
          spec.skip(w);
        }
      }
    } else {
      reader.skip(wire);
    }
  }
  if (model_type != 1)
    throw InputError("sentencepiece model '" + source + "' is not a unigram model (model_type " +
                     std::to_string(model_type) + "); only unigram models (T5) are supported");
  if (byte_fallback)
    throw InputError("sentencepiece model '" + source + "' uses byte_fallback, which is not supported");
  if (model.treat_whitespace_as_suffix_)
    throw InputError("sentencepiece model '" + source + "' treats whitespace as a suffix, which is not supported");
  if (!charsmap.empty()) {
    uint32_t trie_bytes = 0;
    if (charsmap.size() <= 4)
      throw InputError("sentencepiece model '" + source + "': precompiled charsmap is truncated");
    std::memcpy(&trie_bytes, charsmap.data(), 4);
    if (trie_bytes >= charsmap.size() - 4 + 1 || trie_bytes % 4 != 0)
      throw InputError("sentencepiece model '" + source + "': precompiled charsmap has a bad trie size");
    model.trie_.resize(trie_bytes / 4);
    std::memcpy(model.trie_.data(), charsmap.data() + 4, trie_bytes);
    model.replacements_ = charsmap.substr(4 + trie_bytes);
    model.charsmap_ = charsmap;
  }
  model.finish(source);
  return model;
}

SentencePieceModel SentencePieceModel::from_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("tokenizer '" + path + "' cannot be read (missing file?)");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError("tokenizer '" + path + "' is not valid JSON: " + e.what());
  }
  const auto model_json = json.value("model", nlohmann::json::object());
  if (model_json.value("type", std::string()) != "Unigram" || !model_json.contains("vocab"))
    throw InputError("tokenizer '" + path + "' has no Unigram model (model.type '" +
                     model_json.value("type", std::string()) + "')");
  if (!model_json.contains("unk_id") || !model_json.at("unk_id").is_number_integer())
    throw InputError("tokenizer '" + path + "': model.unk_id is missing");
  if (model_json.value("byte_fallback", false))
    throw InputError("tokenizer '" + path + "' uses byte_fallback, which is not supported");
  const nlohmann::json normalizer = json.contains("normalizer") ? json.at("normalizer") : nlohmann::json();
  const auto* precompiled = find_precompiled(normalizer);
  if (!precompiled || !precompiled->contains("precompiled_charsmap"))
    throw InputError("tokenizer '" + path + "' has no Precompiled normaliser with a precompiled_charsmap");
  const auto unk_id = model_json.at("unk_id").get<int64_t>();
  std::set<std::string> special;
  for (const auto& token : json.value("added_tokens", nlohmann::json::array()))
    if (token.value("special", false)) special.insert(token.value("content", std::string()));

  SentencePieceModel model;
  const auto& vocab = model_json.at("vocab");
  std::size_t count = vocab.size();
  while (count > 0 && vocab[count - 1].is_array() && vocab[count - 1][0].is_string() &&
         vocab[count - 1][0].get<std::string>().rfind("<extra_id_", 0) == 0)
    --count;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& entry = vocab[i];
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number())
      throw InputError("tokenizer '" + path + "': model.vocab[" + std::to_string(i) + "] is not [piece, score]");
    Piece piece;
    piece.text = entry[0].get<std::string>();
    piece.score = entry[1].get<float>();
    piece.type = static_cast<int64_t>(i) == unk_id ? PieceType::Unknown
                 : special.count(piece.text) != 0  ? PieceType::Control
                                                   : PieceType::Normal;
    model.pieces_.push_back(std::move(piece));
  }
  const auto charsmap = base64_decode(precompiled->at("precompiled_charsmap").get<std::string>(), path);
  if (charsmap.size() > 4) {
    uint32_t trie_bytes = 0;
    std::memcpy(&trie_bytes, charsmap.data(), 4);
    if (trie_bytes >= charsmap.size() - 4 + 1 || trie_bytes % 4 != 0)
      throw InputError("tokenizer '" + path + "': precompiled charsmap has a bad trie size");
    model.trie_.resize(trie_bytes / 4);
    std::memcpy(model.trie_.data(), charsmap.data() + 4, trie_bytes);
    model.replacements_ = charsmap.substr(4 + trie_bytes);
    model.charsmap_ = charsmap;
  }
  model.finish(path);
  return model;
}

void SentencePieceModel::finish(const std::string& source) {
  bool have_score = false;
  for (int id = 0; id < size(); ++id) {
    const auto& p = pieces_[id];
    ids_.emplace(p.text, id);
    if (p.type == PieceType::Unknown) {
      if (unk_id_ >= 0) throw InputError("sentencepiece model '" + source + "' has more than one unknown piece");
      unk_id_ = id;
    }
    if (p.type == PieceType::Normal || p.type == PieceType::UserDefined || p.type == PieceType::Unused) {
      matchable_.emplace(p.text, id);
      max_piece_bytes_ = std::max(max_piece_bytes_, p.text.size());
    }
    if (p.type == PieceType::UserDefined) user_defined_.push_back(p.text);
    if (p.type == PieceType::Normal) {
      min_score_ = have_score ? std::min(min_score_, p.score) : p.score;
      max_score_ = have_score ? std::max(max_score_, p.score) : p.score;
      have_score = true;
    }
  }
  if (unk_id_ < 0) throw InputError("sentencepiece model '" + source + "' has no unknown piece");
}

int SentencePieceModel::piece_to_id(const std::string& piece) const {
  auto it = ids_.find(piece);
  return it == ids_.end() ? unk_id_ : it->second;
}

// One normalisation step at `at`: the replacement and how many input bytes it consumes. User-defined
// symbols pass untouched; otherwise the longest charsmap rule; otherwise one character (U+FFFD for one
// byte of invalid UTF-8).
std::pair<std::string, std::size_t> SentencePieceModel::normalize_prefix(const std::string& input,
                                                                         std::size_t at) const {
  std::size_t user_length = 0;
  for (const auto& symbol : user_defined_)
    if (symbol.size() > user_length && input.compare(at, symbol.size(), symbol) == 0) user_length = symbol.size();
  if (user_length) return {input.substr(at, user_length), user_length};

  std::size_t longest = 0;
  uint32_t longest_value = 0;
  if (!trie_.empty()) {
    // Darts double-array common-prefix search.
    const auto offset = [](uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
    std::size_t node = offset(trie_[0]);
    for (std::size_t i = at; i < input.size(); ++i) {
      const auto byte = static_cast<unsigned char>(input[i]);
      node ^= byte;
      if (node >= trie_.size()) break;
      const uint32_t unit = trie_[node];
      if ((unit & ((1u << 31) | 0xFF)) != byte) break;
      node ^= offset(unit);
      if (node >= trie_.size()) break;
      if ((unit >> 8) & 1) {
        longest = i + 1 - at;
        longest_value = trie_[node] & ((1u << 31) - 1);
      }
    }
  }
  if (longest > 0) {
    if (longest_value >= replacements_.size()) throw InputError("sentencepiece charsmap points past its strings");
    return {std::string(replacements_.c_str() + longest_value), longest};
  }
  const std::size_t length = valid_utf8_length(input, at);
  if (length == 0) return {"\xEF\xBF\xBD", 1};
  return {input.substr(at, length), length};
}

std::string SentencePieceModel::normalize(const std::string& input) const {
  std::string out;
  std::size_t at = 0;
  if (remove_extra_whitespaces_) {
    while (at < input.size()) {
      const auto step = normalize_prefix(input, at);
      if (step.first != " ") break;
      at += step.second;
    }
  }
  if (at >= input.size()) return out;
  const auto add_space = [&] { out += escape_whitespaces_ ? kSpaceSymbol : " "; };
  if (add_dummy_prefix_) add_space();
  bool previous_space = remove_extra_whitespaces_;
  while (at < input.size()) {
    auto [piece, consumed] = normalize_prefix(input, at);
    std::size_t start = 0;
    if (previous_space)
      while (start < piece.size() && piece[start] == ' ') ++start;
    if (start < piece.size()) {
      for (std::size_t n = start; n < piece.size(); ++n) {
        if (escape_whitespaces_ && piece[n] == ' ') {
          out += kSpaceSymbol;
        } else {
          out += piece[n];
        }
      }
      previous_space = piece.back() == ' ';
    }
    at += consumed;
    if (!remove_extra_whitespaces_) previous_space = false;
  }
  if (remove_extra_whitespaces_) {
    const std::string space = escape_whitespaces_ ? kSpaceSymbol : " ";
    while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0)
      out.resize(out.size() - space.size());
  }
  return out;
}

std::vector<std::pair<std::string, int>> SentencePieceModel::encode(const std::string& text) const {
  const std::string normalized = normalize(text);
  const std::size_t size = normalized.size();
  struct BestPathNode {
    int id = -1;
    float score = 0.0f;
    long starts_at = -1;
  };
  constexpr float kUnknownPenalty = 10.0f;
  const float unknown_score = min_score_ - kUnknownPenalty;
  std::vector<BestPathNode> best(size + 1);
  for (std::size_t start = 0; start < size;) {
    const float score_here = best[start].score;
    const std::size_t char_length =
        std::min(one_char_length(static_cast<unsigned char>(normalized[start])), size - start);
    bool has_single_character = false;
    const std::size_t last = std::min(size, start + max_piece_bytes_);
    for (std::size_t end = start + 1; end <= last; ++end) {
      auto it = matchable_.find(normalized.substr(start, end - start));
      if (it == matchable_.end()) continue;
      const int id = it->second;
      const auto type = pieces_[id].type;
      if (type == PieceType::Unused) continue;
      const std::size_t length = end - start;
      // User-defined symbols get a bonus so that they always win. As in sentencepiece, that bonus makes the
      // candidate a double for every piece: it is compared in double against the stored float.
      const double score = type == PieceType::UserDefined ? length * max_score_ - 0.1 : pieces_[id].score;
      const double candidate = score + score_here;
      auto& node = best[end];
      if (node.starts_at == -1 || candidate > node.score) {
        node.score = static_cast<float>(candidate);
        node.starts_at = static_cast<long>(start);
        node.id = id;
      }
      if (length == char_length) has_single_character = true;
    }
    if (!has_single_character) {
      auto& node = best[start + char_length];
      const float candidate = unknown_score + score_here;
      if (node.starts_at == -1 || candidate > node.score) {
        node.score = candidate;
        node.starts_at = static_cast<long>(start);
        node.id = unk_id_;
      }
    }
    start += char_length;
  }
  std::vector<std::pair<std::string, int>> pieces;
  for (std::size_t end = size; end > 0;) {
    const auto& node = best[end];
    const auto start = static_cast<std::size_t>(node.starts_at);
    pieces.emplace_back(normalized.substr(start, end - start), node.id);
    end = start;
  }
  std::reverse(pieces.begin(), pieces.end());
  // A run of unknown pieces becomes one, as sentencepiece reports it.
  std::vector<std::pair<std::string, int>> merged;
  for (auto& piece : pieces) {
    if (!merged.empty() && piece.second == unk_id_ && merged.back().second == unk_id_) {
      merged.back().first += piece.first;
    } else {
      merged.push_back(std::move(piece));
    }
  }
  return merged;
}

}  // namespace repa::text
