#include "core/io/tensorboard_events.h"

#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>

#include "core/base/error.h"

namespace repa::io {
namespace {

std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

template <typename T>
void put_fixed(std::string& out, T value) {  // protobuf and TFRecord are little-endian; so is every host we run on
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field << 3 | wire_type));
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

std::string event_head(double wall_time, int64_t step) {
  std::string out;
  put_tag(out, 1, 1);  // wall_time: double
  put_fixed(out, wall_time);
  if (step != 0) {  // proto3 leaves a zero out
    put_tag(out, 2, 0);
    put_varint(out, static_cast<uint64_t>(step));
  }
  return out;
}

}  // namespace

uint32_t crc32c(const void* data, std::size_t size) {
  static const std::array<uint32_t, 256> table = make_table();
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, std::size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string encode_file_version_event(double wall_time) {
  std::string out = event_head(wall_time, 0);
  put_bytes(out, 3, "brain.Event:2");
  return out;
}

std::string encode_scalars_event(double wall_time, int64_t step,
                                 const std::vector<std::pair<std::string, float>>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string entry;
    put_bytes(entry, 1, tag);
    put_tag(entry, 2, 5);  // simple_value: float
    put_fixed(entry, value);
    put_bytes(summary, 1, entry);
  }
  std::string out = event_head(wall_time, step);
  put_bytes(out, 5, summary);
  return out;
}

std::string frame_record(const std::string& data) {
  std::string out;
  const uint64_t length = data.size();
  put_fixed(out, length);
  put_fixed(out, masked_crc32c(out.data(), sizeof(length)));
  out += data;
  put_fixed(out, masked_crc32c(data.data(), data.size()));
  return out;
}

TensorBoardWriter::TensorBoardWriter(const std::string& directory, double wall_time) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  char host[256] = "localhost";
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof(host) - 1] = '\0';
  path_ = (std::filesystem::path(directory) /
           ("events.out.tfevents." + std::to_string(static_cast<int64_t>(wall_time)) + "." + host))
              .string();
  out_.open(path_, std::ios::binary | std::ios::trunc);
  if (!out_) throw Error("cannot write the TensorBoard event file '" + path_ + "'");
  write(frame_record(encode_file_version_event(wall_time)));
}

void TensorBoardWriter::add_scalars(int64_t step, double wall_time,
                                    const std::vector<std::pair<std::string, float>>& values) {
  write(frame_record(encode_scalars_event(wall_time, step, values)));
}

void TensorBoardWriter::write(const std::string& record) {
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  if (!out_) throw Error("writing the TensorBoard event file '" + path_ + "' failed");
}

void TensorBoardWriter::flush() {
  out_.flush();
  if (!out_) throw Error("writing the TensorBoard event file '" + path_ + "' failed");
}

}  // namespace repa::io
