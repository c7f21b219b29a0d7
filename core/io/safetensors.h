// Safetensors reading (memory-mapped, bounds-checked) and writing (atomic, header padded to 8 bytes).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace repa::io {

// The safetensors dtype names the project reads and writes.
torch::Dtype dtype_from_safetensors(const std::string& name);  // throws InputError on an unknown name
std::string dtype_to_safetensors(torch::Dtype dtype);         // throws Error on a dtype safetensors lacks
std::size_t dtype_size(const std::string& name);

struct TensorInfo {
  std::string name;
  std::string dtype;            // as written in the file, e.g. "F32"
  std::vector<int64_t> shape;
  uint64_t begin = 0;           // byte offsets into the data section
  uint64_t end = 0;
};

// Largest header accepted; the format itself caps headers at 100 MB.
inline constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

class SafetensorsFile {
 public:
  // Opens and validates `path`; every defect throws InputError naming the file (and the tensor).
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in the order their data appears in the file.
  const std::vector<std::string>& names() const { return order_; }
  bool contains(const std::string& name) const { return infos_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;

  // A copy by default. With view = true, a zero-copy CPU tensor over the mapping (copy-on-write, so
  // writes never reach the file); falls back to a copy when the data is misaligned for its dtype.
  torch::Tensor tensor(const std::string& name, bool view = false) const;

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::optional<std::string> meta(const std::string& key) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
  std::unordered_map<std::string, TensorInfo> infos_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint that is either one .safetensors file or a `*.safetensors.index.json` with its shards.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return shard_of_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  torch::Tensor tensor(const std::string& name, bool view = false) const;
  // Metadata of the index (its "metadata" object) or of the single file.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::vector<SafetensorsFile> shards_;
  std::unordered_map<std::string, std::size_t> shard_of_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes `tensors` (any device; stored from CPU, contiguous) with `metadata`, through a temporary file and a
// rename so that a crash never leaves a half-written file under `path`.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace repa::io
