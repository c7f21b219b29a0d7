#include "core/data/image_folder.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include "core/base/error.h"
#include "core/base/stop_request.h"
#include "core/data/image.h"

namespace repa::data {

namespace fs = std::filesystem;

std::string content_hash(const std::string& bytes) {
  // Two independent 64-bit FNV-1a lanes (different offsets) make collisions between dataset files negligible.
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (unsigned char c : bytes) {
    a = (a ^ c) * 0x100000001b3ull;
    b = (b ^ (c + 0x5bu)) * 0x100000001b3ull;
  }
  b ^= bytes.size();
  char out[33];
  std::snprintf(out, sizeof(out), "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return out;
}

ImageFolder scan_image_folder(const std::string& root, bool class_labels) {
  std::error_code ec;
  if (root.empty()) throw InputError("studio.dataset_dir is empty: name the folder that holds the training images");
  if (!fs::is_directory(root, ec))
    throw InputError("studio.dataset_dir '" + root + "' is not a folder");
  ImageFolder folder;
  folder.root = root;
  std::vector<std::pair<std::string, std::string>> found;  // path, class name
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw InputError("cannot list '" + root + "': " + ec.message());
    if (it->is_symlink() && it->is_directory()) {
      // A link to a folder that contains it would be followed until the path is too long.
      const fs::path target = fs::weakly_canonical(it->path(), ec);
      const fs::path parent = fs::weakly_canonical(it->path().parent_path(), ec);
      if (ec) throw InputError("cannot resolve the link '" + it->path().string() + "': " + ec.message());
      const auto rel = parent.lexically_relative(target);
      if (!rel.empty() && *rel.begin() != "..")
        throw InputError("studio.dataset_dir '" + root + "': the link '" + it->path().string() + "' points to '" +
                         target.string() + "', a folder that contains it (a symlink loop); remove the link");
    }
    if (!it->is_regular_file() || !has_image_extension(it->path().string())) continue;
    const fs::path relative = fs::relative(it->path(), root);
    std::string class_name;
    if (class_labels) {
      if (std::distance(relative.begin(), relative.end()) < 2)
        throw InputError("image '" + it->path().string() +
                         "' sits directly in the dataset folder, but class labels come from its sub-folders "
                         "(put it in <dataset>/<class>/, or set studio.class_labels to false)");
      class_name = relative.begin()->string();
    }
    found.emplace_back(it->path().string(), class_name);
  }
  if (found.empty()) throw InputError("studio.dataset_dir '" + root + "' holds no image files (png, jpg, bmp, webp)");
  std::sort(found.begin(), found.end());
  std::map<std::string, int64_t> label_of;
  for (const auto& entry : found)
    if (class_labels) label_of.emplace(entry.second, 0);
  for (auto& [name, index] : label_of) {
    index = static_cast<int64_t>(folder.class_names.size());
    folder.class_names.push_back(name);
  }
  for (const auto& [path, class_name] : found)
    folder.images.push_back({path, class_labels ? label_of.at(class_name) : -1, ""});
  return folder;
}

void prepare_image_folder(ImageFolder& folder, int threads) {
  const std::size_t n = folder.images.size();
  std::vector<std::string> failures(n);
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < n; i = next++) {
      if (stop_signal() != 0) return;  // a stop request: the caller throws StopRequested after the join
      ImageRecord& record = folder.images[i];
      std::ifstream in(record.path, std::ios::binary);
      if (!in) {
        failures[i] = "cannot be opened";
        continue;
      }
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        decode_image(bytes, record.path);
        record.content_hash = content_hash(bytes);
      } catch (const std::exception& e) {
        failures[i] = e.what();
        if (failures[i].empty()) failures[i] = "cannot be decoded";
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  throw_if_stop_requested("reading the dataset");
  std::vector<ImageRecord> good;
  for (std::size_t i = 0; i < n; ++i) {
    if (failures[i].empty())
      good.push_back(std::move(folder.images[i]));
    else
      folder.corrupt.push_back({folder.images[i].path, failures[i]});
  }
  folder.images = std::move(good);
  if (folder.images.empty())
    throw InputError("studio.dataset_dir '" + folder.root + "' has no usable image: all " +
                     std::to_string(folder.corrupt.size()) + " files failed to decode (first: " +
                     folder.corrupt.front().path + ": " + folder.corrupt.front().reason + ")");
}

}  // namespace repa::data
