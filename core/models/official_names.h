// Reading a model's official single file (its authors' tensor names) as diffusers' names: one table per family
// (flux_official_names, sd3_official_names) built from these steps, mirroring diffusers' single-file converters.
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
