#include "core/models/official_names.h"

#include <algorithm>
#include <utility>

#include "core/base/error.h"

namespace repa::models {

std::string strip_single_file_prefix(const std::string& name) {
  static const std::string prefix = "model.diffusion_model.";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

OfficialNameTable::OfficialNameTable(const std::map<std::string, torch::Tensor>& tensors, std::string family,
                                     std::string origin)
    : family_(std::move(family)), origin_(std::move(origin)) {
  for (const auto& [name, tensor] : tensors) source_[strip_single_file_prefix(name)] = tensor;
}

torch::Tensor OfficialNameTable::take(const std::string& name) {
  const auto it = source_.find(name);
  if (it == source_.end()) throw InputError(origin_ + ": the " + family_ + " single file lacks " + name);
  used_.insert(name);
  return it->second;
}

void OfficialNameTable::copy(const std::string& from, const std::string& to) {
  out_[to] = take(from);
}

void OfficialNameTable::linear(const std::string& from, const std::string& to) {
  copy(from + ".weight", to + ".weight");
  copy(from + ".bias", to + ".bias");
}

void OfficialNameTable::split(const std::string& from, const std::vector<int64_t>& sizes,
                              const std::vector<std::string>& targets) {
  const auto fused = take(from);
  int64_t total = 0;
  for (const auto s : sizes) total += s;
  if (fused.size(0) != total)
    throw InputError(origin_ + ": " + from + " has " + std::to_string(fused.size(0)) + " rows, expected " +
                     std::to_string(total));
  int64_t start = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    out_[targets[i]] = fused.narrow(0, start, sizes[i]);
    start += sizes[i];
  }
}

void OfficialNameTable::swap_halves(const std::string& from, const std::string& to) {
  const auto halves = take(from).chunk(2, 0);
  out_[to] = torch::cat({halves[1], halves[0]}, 0);
}

int64_t OfficialNameTable::count(const std::string& block_kind) const {
  int64_t n = 0;
  const std::string head = block_kind + ".";
  for (const auto& item : source_) {
    const auto& name = item.first;
    if (name.rfind(head, 0) != 0) continue;
    const auto end = name.find('.', head.size());
    n = std::max<int64_t>(n, std::stoll(name.substr(head.size(), end - head.size())) + 1);
  }
  return n;
}

std::map<std::string, torch::Tensor> OfficialNameTable::finish() const {
  std::vector<std::string> unknown;
  for (const auto& item : source_)
    if (!used_.count(item.first)) unknown.push_back(item.first);
  if (!unknown.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unknown.size() && i < 12; ++i) list += (i ? ", " : "") + unknown[i];
    if (unknown.size() > 12) list += " and " + std::to_string(unknown.size() - 12) + " more";
    throw InputError(origin_ + ": tensors the " + family_ + " single-file table does not know: " + list);
  }
  return out_;
}

}  // namespace repa::models
