#include "core/models/official_names.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/base/error.h"

namespace repa::models {

std::string strip_single_file_prefix(const std::string& name) {
  static const std::string prefix = "model.diffusion_model.";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

void NameTableBuilder::copy(const std::string& official, const std::string& diffusers) {
  table_.push_back({NameRule::Kind::Copy, official, {diffusers}, {}});
}

void NameTableBuilder::linear(const std::string& official, const std::string& diffusers) {
  copy(official + ".weight", diffusers + ".weight");
  copy(official + ".bias", diffusers + ".bias");
}

void NameTableBuilder::fuse(const std::string& official, const std::vector<std::string>& parts,
                            const std::vector<int64_t>& rows) {
  table_.push_back({NameRule::Kind::Fuse, official, parts, rows});
}

void NameTableBuilder::swap_halves(const std::string& official, const std::string& diffusers) {
  table_.push_back({NameRule::Kind::SwapHalves, official, {diffusers}, {}});
}

void NameTableBuilder::squeeze(const std::string& official, const std::string& diffusers) {
  table_.push_back({NameRule::Kind::Squeeze, official, {diffusers}, {}});
}

void NameTableBuilder::transpose(const std::string& official, const std::string& diffusers) {
  table_.push_back({NameRule::Kind::Transpose, official, {diffusers}, {}});
}

bool NameShape::has(const std::string& official, const std::string& diffusers) const {
  return tensors_.count(official_ ? official : diffusers) != 0;
}

int64_t NameShape::count(const std::string& official_kind, const std::string& diffusers_kind) const {
  int64_t n = 0;
  const std::string head = (official_ ? official_kind : diffusers_kind) + ".";
  for (auto it = tensors_.lower_bound(head); it != tensors_.end() && it->first.rfind(head, 0) == 0; ++it) {
    const auto& name = it->first;
    const auto index = name.substr(head.size(), name.find('.', head.size()) - head.size());
    if (!index.empty() && index.size() < 9 && index.find_first_not_of("0123456789") == std::string::npos)
      n = std::max<int64_t>(n, std::stoll(index) + 1);
  }
  return n;
}

int64_t NameShape::rows(const std::string& official, const std::string& diffusers) const {
  const auto it = tensors_.find(official_ ? official : diffusers);
  return it == tensors_.end() || it->second.dim() == 0 ? 0 : it->second.size(0);
}

namespace {

// What a table left unused, listed in one message (12 names, then a count).
std::string unused_list(const std::map<std::string, torch::Tensor>& source, const std::set<std::string>& used) {
  std::string list;
  std::size_t n = 0;
  for (const auto& item : source) {
    if (used.count(item.first)) continue;
    if (n++ < 12) list += (list.empty() ? "" : ", ") + item.first;
  }
  if (n > 12) list += " and " + std::to_string(n - 12) + " more";
  return list;
}

}  // namespace

std::map<std::string, torch::Tensor> apply_official_to_diffusers(const NameTable& table,
                                                                 const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& family, const std::string& origin) {
  std::set<std::string> used;
  std::map<std::string, torch::Tensor> out;
  const auto take = [&](const std::string& name) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw InputError(origin + ": the " + family + " single file lacks " + name);
    used.insert(name);
    return it->second;
  };
  for (const auto& rule : table) {
    const auto t = take(rule.official);
    const auto& to = rule.diffusers.front();
    switch (rule.kind) {
      case NameRule::Kind::Copy:
        out[to] = t;
        break;
      case NameRule::Kind::SwapHalves: {
        const auto halves = t.chunk(2, 0);
        out[to] = torch::cat({halves[1], halves[0]}, 0);
        break;
      }
      case NameRule::Kind::Squeeze:
        out[to] = t.dim() == 4 ? t.flatten(1) : t;
        break;
      case NameRule::Kind::Transpose:
        if (t.dim() != 2) throw InputError(origin + ": " + rule.official + " is not a matrix");
        out[to] = t.t().contiguous();
        break;
      case NameRule::Kind::Fuse: {
        int64_t known = 0, rest = -1;
        for (std::size_t i = 0; i < rule.rows.size(); ++i) {
          if (rule.rows[i] < 0)
            rest = static_cast<int64_t>(i);
          else
            known += rule.rows[i];
        }
        const int64_t total = t.dim() == 0 ? 0 : t.size(0);
        if ((rest < 0 && total != known) || (rest >= 0 && total <= known))
          throw InputError(origin + ": " + rule.official + " has " + std::to_string(total) + " rows, expected " +
                           (rest < 0 ? std::to_string(known) : "more than " + std::to_string(known)));
        int64_t start = 0;
        for (std::size_t i = 0; i < rule.diffusers.size(); ++i) {
          const int64_t n = static_cast<int64_t>(i) == rest ? total - known : rule.rows[i];
          out[rule.diffusers[i]] = t.narrow(0, start, n);
          start += n;
        }
        break;
      }
    }
  }
  if (const auto unknown = unused_list(tensors, used); !unknown.empty())
    throw InputError(origin + ": tensors the " + family + " single-file table does not know: " + unknown);
  return out;
}

std::map<std::string, torch::Tensor> apply_diffusers_to_official(const NameTable& table,
                                                                 const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& family, const std::string& origin) {
  std::set<std::string> used;
  std::map<std::string, torch::Tensor> out;
  const auto take = [&](const std::string& name) {
    const auto it = tensors.find(name);
    if (it == tensors.end())
      throw InputError(origin + ": writing the " + family + " single file needs " + name + ", which is missing");
    used.insert(name);
    return it->second;
  };
  for (const auto& rule : table) {
    if (rule.kind == NameRule::Kind::Fuse) {
      std::vector<torch::Tensor> parts;
      for (const auto& p : rule.diffusers) parts.push_back(take(p));
      out[rule.official] = torch::cat(parts, 0);
      continue;
    }
    const auto t = take(rule.diffusers.front());
    switch (rule.kind) {
      case NameRule::Kind::SwapHalves: {
        const auto halves = t.chunk(2, 0);
        out[rule.official] = torch::cat({halves[1], halves[0]}, 0);
        break;
      }
      case NameRule::Kind::Squeeze:
        out[rule.official] = t.dim() == 2 ? t.reshape({t.size(0), t.size(1), 1, 1}) : t;
        break;
      case NameRule::Kind::Transpose:
        out[rule.official] = t.t().contiguous();
        break;
      default:
        out[rule.official] = t;
    }
  }
  if (const auto unknown = unused_list(tensors, used); !unknown.empty())
    throw InputError(origin + ": tensors the " + family + " single-file table has no official name for: " + unknown);
  return out;
}

std::map<std::string, torch::Tensor> strip_single_file_prefixes(const std::map<std::string, torch::Tensor>& tensors) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, tensor] : tensors) out[strip_single_file_prefix(name)] = tensor;
  return out;
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
