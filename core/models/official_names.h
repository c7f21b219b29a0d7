// A family's official single-file names (its authors' tensor names) against diffusers' names: one declarative table
// per family (flux_official_names, sd3_official_names, pixart_official_names, ldm_single_file), generated for the
// weights at hand and read in both directions — official → diffusers to load a single file, diffusers → official to
// write one.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace repa::models {

// The official names with the optional "model.diffusion_model." prefix of the single files removed.
std::string strip_single_file_prefix(const std::string& name);

// One correspondence of a name table. Reading applies it official → diffusers, writing diffusers → official.
struct NameRule {
  enum class Kind {
    Copy,        // one tensor, renamed
    Fuse,        // official = diffusers parts concatenated along dim 0 (fused qkv, OpenCLIP in_proj)
    SwapHalves,  // official (shift, scale) = diffusers (scale, shift)
    Squeeze,     // official conv 1×1 (C, C, 1, 1) = diffusers linear (C, C) (the LDM VAE's attention)
    Transpose,   // official (in, out) matrix used as x @ P = diffusers linear weight (out, in) (OpenCLIP projection)
  };
  Kind kind = Kind::Copy;
  std::string official;
  std::vector<std::string> diffusers;  // one name, or the fused parts in row order
  std::vector<int64_t> rows;           // Fuse, when reading: rows of each part; -1 = what the others leave
};
using NameTable = std::vector<NameRule>;

// Building a table: `linear` adds the .weight and .bias of one module.
class NameTableBuilder {
 public:
  void copy(const std::string& official, const std::string& diffusers);
  void linear(const std::string& official, const std::string& diffusers);
  void fuse(const std::string& official, const std::vector<std::string>& parts, const std::vector<int64_t>& rows);
  void swap_halves(const std::string& official, const std::string& diffusers);
  void squeeze(const std::string& official, const std::string& diffusers);
  void transpose(const std::string& official, const std::string& diffusers);
  NameTable& table() { return table_; }

 private:
  NameTable table_;
};

// The weights a table is generated for, seen in the naming they are in: a generator asks each question with both
// names (official, diffusers) and the answer comes from whichever naming the weights use.
class NameShape {
 public:
  NameShape(const std::map<std::string, torch::Tensor>& tensors, bool official)
      : tensors_(tensors), official_(official) {}
  bool official() const { return official_; }
  bool has(const std::string& official, const std::string& diffusers) const;
  // 1 + the largest index N of "<kind>.N.*" (0 when there are none).
  int64_t count(const std::string& official_kind, const std::string& diffusers_kind) const;
  // Rows (dim 0) of the tensor, 0 when it is absent.
  int64_t rows(const std::string& official, const std::string& diffusers) const;
  const std::map<std::string, torch::Tensor>& tensors() const { return tensors_; }

 private:
  const std::map<std::string, torch::Tensor>& tensors_;
  bool official_;
};

// Official-named tensors → diffusers-named ones by `table`. InputError naming `origin` and: a missing tensor ("the
// <family> single file lacks X"), a fused tensor of the wrong row count, and every tensor the table does not know.
std::map<std::string, torch::Tensor> apply_official_to_diffusers(const NameTable& table,
                                                                 const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& family, const std::string& origin);
// Diffusers-named tensors → official ones by the same table ("writing the <family> single file needs X", "tensors
// the <family> single-file table has no official name for: ...").
std::map<std::string, torch::Tensor> apply_diffusers_to_official(const NameTable& table,
                                                                 const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& family, const std::string& origin);

// The official names with the prefix stripped (model.diffusion_model.), as the DiT tables read them.
std::map<std::string, torch::Tensor> strip_single_file_prefixes(const std::map<std::string, torch::Tensor>& tensors);

// Step-by-step reading, for the reader-only tables (Lumina2).
class OfficialNameTable {
 public:
  // `family` names the file kind in messages ("Flux", "SD3"); `origin` the file.
  OfficialNameTable(const std::map<std::string, torch::Tensor>& tensors, std::string family, std::string origin);

  bool has(const std::string& name) const { return source_.count(name) != 0; }
  torch::Tensor take(const std::string& name);                  // InputError naming a missing tensor
  void copy(const std::string& from, const std::string& to);    // one tensor under its diffusers name
  void linear(const std::string& from, const std::string& to);  // .weight and .bias of one linear
  // A fused tensor split along dim 0 into `sizes` rows, one part per target (InputError for a wrong row count).
  void split(const std::string& from, const std::vector<int64_t>& sizes, const std::vector<std::string>& targets);
  // (shift, scale) halves stored as (scale, shift), the order diffusers' AdaLayerNormContinuous reads.
  void swap_halves(const std::string& from, const std::string& to);
  // 1 + the largest index N of the tensors named "<block_kind>.N.*" (0 when there are none).
  int64_t count(const std::string& block_kind) const;
  // The converted tensors; InputError naming every official tensor the table did not use.
  std::map<std::string, torch::Tensor> finish() const;

 private:
  std::string family_, origin_;
  std::map<std::string, torch::Tensor> source_, out_;
  std::set<std::string> used_;
};

}  // namespace repa::models
