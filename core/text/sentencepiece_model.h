// A SentencePiece unigram model read natively, run as sentencepiece 0.1.97 runs it: the model's normaliser
// (precompiled charsmap, e.g. nmt_nfkc: longest-match rewrite rules in a Darts double-array trie), leading,
// repeated and trailing whitespace removed, a dummy "▁" prefix, spaces escaped as "▁", then the optimised
// unigram Viterbi search, with each run of out-of-vocabulary characters as one unknown piece.
//
// Native rather than Debian's libsentencepiece: that library carries its own copy of protobuf 3.14 and exports
// its symbols, which collide with the protobuf 3.21 that LibTorch loads (the process aborts at start-up).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace repa::text {

class SentencePieceModel {
 public:
  enum class PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
  struct Piece {
    std::string text;
    float score = 0.0f;
    PieceType type = PieceType::Normal;
  };

  // A serialized sentencepiece ModelProto (spiece.model); InputError naming `source` when malformed, not a
  // unigram model, or without an unknown piece.
  static SentencePieceModel from_proto(const std::string& bytes, const std::string& source);
  static SentencePieceModel from_file(const std::string& path);
  // A Hugging Face tokenizer.json with a Unigram model and a Precompiled normaliser (what FLUX's tokenizer_2
  // ships): the same pieces, scores and charsmap. Trailing <extra_id_N> entries are left out, as spiece.model
  // lacks them. tokenizer.json's Strip / Replace(" {2,}") / Metaspace are sentencepiece's default flags.
  static SentencePieceModel from_tokenizer_json(const std::string& path);

  // The normalised text ("▁"-escaped) and its pieces: (piece text, id); unknown runs carry the unknown id.
  std::string normalize(const std::string& text) const;
  std::vector<std::pair<std::string, int>> encode(const std::string& text) const;

  int piece_to_id(const std::string& piece) const;  // the unknown id when absent
  int size() const { return static_cast<int>(pieces_.size()); }
  const Piece& piece(int id) const { return pieces_.at(id); }
  int unk_id() const { return unk_id_; }
  // The normaliser's rules as stored in the model (trie size, double-array trie, replacement strings).
  const std::string& precompiled_charsmap() const { return charsmap_; }

 private:
  void finish(const std::string& source);
  std::pair<std::string, std::size_t> normalize_prefix(const std::string& input, std::size_t at) const;

  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int> ids_;        // every piece
  std::unordered_map<std::string, int> matchable_;  // what the Viterbi search may use: normal, user-defined, unused
  std::vector<std::string> user_defined_;           // passed through the normaliser untouched
  std::size_t max_piece_bytes_ = 0;
  int unk_id_ = -1;
  float min_score_ = 0.0f, max_score_ = 0.0f;
  // Normaliser: the double-array trie units and the replacement strings they point into.
  std::vector<uint32_t> trie_;
  std::string replacements_;
  std::string charsmap_;
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;
  bool treat_whitespace_as_suffix_ = false;
};

}  // namespace repa::text
