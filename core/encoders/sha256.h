// SHA-256 (FIPS 180-4) for checking downloaded weights against their published digests.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace repa::encoders {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  std::string hex_digest();  // finishes the hash; lower-case hex, 64 characters

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// The digest of a whole file; throws InputError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace repa::encoders
