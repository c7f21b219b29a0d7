// TensorBoard event files written natively (no TensorFlow, no protobuf library): the TFRecord framing
// (uint64 length, masked CRC32C of the length, data, masked CRC32C of the data, little-endian) around
// tensorflow.Event messages encoded by hand: wall_time (1, double), step (2, int64), file_version (3) on
// the first record, summary (5) { value (1) { tag (1), simple_value (2, float) } }.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace repa::io {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it.
uint32_t crc32c(const void* data, std::size_t size);
// TFRecord's mask: rotate right by 15 and add 0xa282ead8.
uint32_t masked_crc32c(const void* data, std::size_t size);

// One tensorflow.Event as bytes.
std::string encode_file_version_event(double wall_time);
std::string encode_scalars_event(double wall_time, int64_t step,
                                 const std::vector<std::pair<std::string, float>>& values);
// One record: the framing around `data`.
std::string frame_record(const std::string& data);

// events.out.tfevents.<seconds>.<host> in `directory` (created), starting with the file_version event.
class TensorBoardWriter {
 public:
  TensorBoardWriter(const std::string& directory, double wall_time);
  const std::string& path() const { return path_; }
  // One event holding every value of one step.
  void add_scalars(int64_t step, double wall_time, const std::vector<std::pair<std::string, float>>& values);
  void flush();  // throws Error naming the file when the disk refused

 private:
  void write(const std::string& record);
  std::string path_;
  std::ofstream out_;
};

}  // namespace repa::io
