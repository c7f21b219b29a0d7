// An image folder as a dataset: every image file under the root, with class labels from the first level of
// sub-folders when classes are asked for (root/<class>/.../image.png; files directly under root are then
// an error). Files that stb cannot decode are found while the dataset is prepared and kept aside by name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace repa::data {

struct ImageRecord {
  std::string path;
  int64_t label = -1;        // class index, -1 when the dataset has no classes
  std::string content_hash;  // hex digest of the file's bytes (filled by prepare_image_folder)
};

struct CorruptImage {
  std::string path;
  std::string reason;
};

struct ImageFolder {
  std::string root;
  std::vector<std::string> class_names;  // sorted; index = label
  std::vector<ImageRecord> images;       // sorted by path: the order is the same on every machine
  std::vector<CorruptImage> corrupt;     // skipped files, by name
};

// Lists image files under `root` (sorted). Throws InputError when root is missing or holds no image file.
ImageFolder scan_image_folder(const std::string& root, bool class_labels);

// Reads every listed file, hashes its bytes and checks that it decodes; files that fail move to `corrupt`.
// Decoding uses `threads` background threads. Throws InputError when no usable image remains.
void prepare_image_folder(ImageFolder& folder, int threads);

// 128-bit FNV-1a over `bytes` as 32 hex digits: a stable content key for the caches.
std::string content_hash(const std::string& bytes);

}  // namespace repa::data
