#include "core/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/base/bounded_json.h"
#include "core/base/error.h"
#include "core/io/atomic_file.h"

namespace repa::io {

namespace {

using nlohmann::json;

struct DtypeEntry {
  const char* name;
  torch::Dtype dtype;
  std::size_t size;
};

constexpr DtypeEntry kDtypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeEntry* find_dtype(const std::string& name) {
  for (const auto& entry : kDtypes)
    if (name == entry.name) return &entry;
  return nullptr;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError("safetensors file " + path + ": " + what);
}

// A name from the file, cut for a message: a hostile header may hold megabyte-long tensor names.
std::string excerpt_name(const std::string& name) {
  constexpr std::size_t kMax = 160;
  return name.size() <= kMax ? name : name.substr(0, kMax) + "…";
}

// Finds the first top-level key listed twice (nlohmann keeps only the last one), without building a tree.
class DuplicateKeyFinder : public nlohmann::json_sax<json> {
 public:
  std::string duplicate;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth_ <= kMaxJsonDepth; }
  bool end_object() override { return --depth_ >= 0; }
  bool start_array(std::size_t) override { return ++depth_ <= kMaxJsonDepth; }
  bool end_array() override { return --depth_ >= 0; }
  bool key(string_t& k) override {
    if (depth_ == 1 && !seen_.insert(k).second) {
      duplicate = k;
      return false;  // the first one is enough
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  int depth_ = 0;
  std::set<std::string> seen_;
};

// a * b, or nullopt when it does not fit 64 bits.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

}  // namespace

torch::Dtype dtype_from_safetensors(const std::string& name) {
  if (const auto* entry = find_dtype(name)) return entry->dtype;
  throw InputError("unknown safetensors dtype '" + name + "'");
}

std::size_t dtype_size(const std::string& name) {
  if (const auto* entry = find_dtype(name)) return entry->size;
  throw InputError("unknown safetensors dtype '" + name + "'");
}

std::string dtype_to_safetensors(torch::Dtype dtype) {
  for (const auto& entry : kDtypes)
    if (entry.dtype == dtype) return entry.name;
  throw Error(std::string("dtype ") + c10::toString(dtype) + " cannot be stored in safetensors");
}

struct SafetensorsFile::Mapping {
  void* base = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (base && base != MAP_FAILED) ::munmap(base, size);
  }
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;

  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(path, "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  }
  file.mapping_ = std::make_shared<Mapping>();
  file.mapping_->size = file_size;
  // Private, writable mapping: zero-copy tensors may be written to without touching the file.
  file.mapping_->base = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (file.mapping_->base == MAP_FAILED) fail(path, std::string("cannot map: ") + std::strerror(errno));
  const auto* bytes = static_cast<const uint8_t*>(file.mapping_->base);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the " + std::to_string(kMaxHeaderBytes) +
                   "-byte limit (not a safetensors file?)");
  if (header_len > file_size - 8)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                   std::to_string(file_size) + "-byte file (truncated?)");

  const char* text = reinterpret_cast<const char*>(bytes + 8);
  // Bounded: a header nested 65,000 levels deep is refused by name instead of overflowing the stack.
  const json header = parse_json_bounded(std::string_view(text, header_len), "safetensors file " + path + ": header");
  DuplicateKeyFinder duplicates;
  json::sax_parse(text, text + header_len, &duplicates);
  if (!duplicates.duplicate.empty())
    fail(path, "tensor '" + excerpt_name(duplicates.duplicate) + "' is listed twice in the header");
  if (!header.is_object()) fail(path, "header is not a JSON object");

  file.data_ = bytes + 8 + header_len;
  file.data_size_ = file_size - 8 - header_len;

  std::vector<TensorInfo> infos;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) fail(path, "__metadata__ value of '" + excerpt_name(m.key()) + "' is not a string");
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + excerpt_name(name) + "'";
    if (!entry.is_object()) fail(path, where + ": header entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) fail(path, where + ": missing string 'dtype'");
    if (!entry.contains("shape") || !entry["shape"].is_array()) fail(path, where + ": missing array 'shape'");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      fail(path, where + ": 'data_offsets' must be an array of two integers");
    TensorInfo info;
    info.name = name;
    info.dtype = entry["dtype"].get<std::string>();
    const DtypeEntry* dtype = find_dtype(info.dtype);
    if (!dtype) fail(path, where + ": unknown or unsupported dtype '" + excerpt_name(info.dtype) + "'");
    // Sizes come from the file: every product is checked, so [2^62] F32 cannot wrap around to 0 bytes.
    uint64_t elements = 1;
    bool any_zero = false;
    for (const auto& dim : entry["shape"]) {
      if (!dim.is_number_integer() || dim.get<int64_t>() < 0)
        fail(path,
             where + ": shape " + json_excerpt(entry["shape"]) + " has a dimension that is not a non-negative integer");
      const auto d = dim.get<int64_t>();
      info.shape.push_back(d);
      any_zero = any_zero || d == 0;
      // A product past int64 is refused even when a later 0 would cancel it: LibTorch sizes are int64.
      const auto product = checked_mul(elements, static_cast<uint64_t>(d == 0 ? 1 : d));
      if (!product || *product > static_cast<uint64_t>(INT64_MAX))
        fail(path, where + ": shape " + json_excerpt(entry["shape"]) + " has more than 2^63 elements");
      elements = *product;
    }
    if (any_zero) elements = 0;
    for (const auto& off : entry["data_offsets"])
      if (!off.is_number_unsigned() && !(off.is_number_integer() && off.get<int64_t>() >= 0))
        fail(path, where + ": data_offsets " + json_excerpt(entry["data_offsets"]) + " are not non-negative integers");
    info.begin = entry["data_offsets"][0].get<uint64_t>();
    info.end = entry["data_offsets"][1].get<uint64_t>();
    if (info.end < info.begin)
      fail(path, where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                     "] end before they begin");
    if (info.end > file.data_size_)
      fail(path, where + ": data_offsets end at byte " + std::to_string(info.end) + " but the data section has " +
                     std::to_string(file.data_size_) + " bytes (truncated file?)");
    const auto needed = checked_mul(elements, dtype->size);
    if (!needed)
      fail(path, where + ": shape " + shape_string(info.shape) + " of " + info.dtype +
                     " needs more than 2^64 bytes (the header's sizes overflow)");
    const uint64_t expected = *needed;
    if (info.end - info.begin != expected)
      fail(path, where + ": shape " + shape_string(info.shape) + " of " + info.dtype + " needs " +
                     std::to_string(expected) + " bytes but data_offsets span " +
                     std::to_string(info.end - info.begin));
    infos.push_back(std::move(info));
  }

  std::sort(infos.begin(), infos.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by start, a tensor overlaps an earlier one exactly when it starts before the furthest end so far.
  const TensorInfo* furthest = nullptr;
  for (const auto& cur : infos) {
    if (cur.end == cur.begin) continue;  // empty tensors occupy no bytes
    if (furthest && cur.begin < furthest->end)
      fail(path, "tensors '" + furthest->name + "' and '" + cur.name + "' overlap in the data section");
    if (!furthest || cur.end > furthest->end) furthest = &cur;
  }
  for (auto& info : infos) {
    file.order_.push_back(info.name);
    file.infos_.emplace(info.name, std::move(info));
  }
  return file;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = infos_.find(name);
  if (it == infos_.end()) fail(path_, "has no tensor named '" + name + "'");
  return it->second;
}

std::optional<std::string> SafetensorsFile::meta(const std::string& key) const {
  const auto it = metadata_.find(key);
  if (it == metadata_.end()) return std::nullopt;
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name, bool view) const {
  const TensorInfo& ti = info(name);
  const DtypeEntry* dtype = find_dtype(ti.dtype);
  const auto options = torch::TensorOptions().dtype(dtype->dtype).device(torch::kCPU);
  uint8_t* ptr = const_cast<uint8_t*>(data_ + ti.begin);
  const bool aligned = reinterpret_cast<std::uintptr_t>(ptr) % dtype->size == 0;
  if (view && aligned) {
    auto keep = mapping_;
    return torch::from_blob(ptr, ti.shape, [keep](void*) {}, options);
  }
  auto out = torch::empty(ti.shape, options);
  if (ti.end > ti.begin) std::memcpy(out.data_ptr(), ptr, ti.end - ti.begin);
  return out;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& path) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint ckpt;
  ckpt.path_ = path;
  const std::string suffix = ".index.json";
  const bool is_index = path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  if (!is_index) {
    ckpt.shards_.push_back(SafetensorsFile::open(path));
    for (const auto& name : ckpt.shards_[0].names()) ckpt.shard_of_[name] = 0;
    ckpt.metadata_ = ckpt.shards_[0].metadata();
    return ckpt;
  }
  std::ifstream in(path);
  if (!in) throw InputError("checkpoint index " + path + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json index = parse_json_bounded(text, "checkpoint index " + path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw InputError("checkpoint index " + path + ": missing object 'weight_map'");
  if (index.contains("metadata") && index["metadata"].is_object())
    for (auto it = index["metadata"].begin(); it != index["metadata"].end(); ++it)
      ckpt.metadata_[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  const fs::path dir = fs::path(path).parent_path();
  std::map<std::string, std::size_t> shard_index;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw InputError("checkpoint index " + path + ": weight_map entry '" + excerpt_name(it.key()) +
                       "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    auto found = shard_index.find(shard);
    if (found == shard_index.end()) {
      const fs::path shard_path = dir / shard;
      std::error_code ec;
      if (!fs::exists(shard_path, ec))
        throw InputError("checkpoint index " + path + ": shard " + excerpt_name(shard_path.string()) + " (holding '" +
                         excerpt_name(it.key()) + "') does not exist");
      ckpt.shards_.push_back(SafetensorsFile::open(shard_path.string()));
      found = shard_index.emplace(shard, ckpt.shards_.size() - 1).first;
    }
    if (!ckpt.shards_[found->second].contains(it.key()))
      throw InputError("checkpoint index " + path + ": tensor '" + excerpt_name(it.key()) + "' is mapped to " +
                       excerpt_name(shard) + " but that shard does not contain it");
    ckpt.shard_of_[it.key()] = found->second;
  }
  return ckpt;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& shard : shards_)
    for (const auto& name : shard.names())
      if (shard_of_.count(name)) out.push_back(name);
  return out;
}

const TensorInfo& SafetensorsCheckpoint::info(const std::string& name) const {
  const auto it = shard_of_.find(name);
  if (it == shard_of_.end()) throw InputError("checkpoint " + path_ + ": has no tensor named '" + name + "'");
  return shards_[it->second].info(name);
}

torch::Tensor SafetensorsCheckpoint::tensor(const std::string& name, bool view) const {
  const auto it = shard_of_.find(name);
  if (it == shard_of_.end()) throw InputError("checkpoint " + path_ + ": has no tensor named '" + name + "'");
  return shards_[it->second].tensor(name, view);
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  std::vector<torch::Tensor> data;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!names.insert(name).second) throw Error("save_safetensors " + path + ": tensor '" + name + "' given twice");
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_to_safetensors(cpu.scalar_type());
    entry["shape"] = cpu.sizes().vec();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = entry;
    offset += bytes;
    data.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  write_file_atomically(path, [&](std::ostream& out) {
    uint64_t len = text.size();
    char len_bytes[8];
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    out.write(len_bytes, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : data)
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  });
}

}  // namespace repa::io
