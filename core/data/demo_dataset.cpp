#include "core/data/demo_dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/error.h"
#include "core/data/epoch_shuffle.h"
#include "core/data/image.h"
#include "core/io/atomic_file.h"

namespace repa::data {

namespace fs = std::filesystem;

const std::vector<std::string>& demo_class_names() {
  static const std::vector<std::string> names = {"disc", "square", "triangle", "ring", "cross", "stripes"};
  return names;
}

namespace {

// A small deterministic generator: uniform doubles from splitmix64.
class Dice {
 public:
  explicit Dice(uint64_t seed) : state_(seed) {}
  double uniform(double lo, double hi) {
    state_ = mix_seed(state_, 0x1234);
    return lo + (hi - lo) * static_cast<double>(state_ >> 11) / static_cast<double>(1ull << 53);
  }

 private:
  uint64_t state_;
};

bool inside(int shape, double dx, double dy, double r) {
  const double ax = std::fabs(dx), ay = std::fabs(dy);
  switch (shape) {
    case 0:
      return dx * dx + dy * dy <= r * r;
    case 1:
      return ax <= r * 0.8 && ay <= r * 0.8;
    case 2:
      return dy <= r * 0.7 && dy >= -r && ax <= (dy + r) * 0.6;
    case 3: {
      const double d = std::sqrt(dx * dx + dy * dy);
      return d <= r && d >= r * 0.55;
    }
    case 4:
      return (ax <= r * 0.3 && ay <= r) || (ay <= r * 0.3 && ax <= r);
    default:
      return ax <= r && ay <= r && static_cast<int>(std::floor((dx + r) / (r * 0.5))) % 2 == 0;
  }
}

// What a caption says of a drawn shape: its size, colour, kind and place, e.g. "a large red disc in the upper
// left, on a dark background"; the text-to-image demo trains on these sidecar .txt files.
std::string describe_shape(int shape, int size, double r, double cx, double cy) {
  static const char* kColours[6] = {"red", "green", "blue", "yellow", "purple", "cyan"};
  static const char* kShapes[6] = {"disc", "square", "triangle", "ring", "cross", "striped square"};
  const double relative = r / size;
  const char* size_word = relative < 0.27 ? "small " : relative > 0.31 ? "large " : "";
  const double x = cx / size, y = cy / size;
  const std::string vertical = y < 0.42 ? "upper" : y > 0.58 ? "lower" : "";
  const std::string horizontal = x < 0.42 ? "left" : x > 0.58 ? "right" : "";
  std::string place = vertical.empty() && horizontal.empty() ? "in the centre"
                      : horizontal.empty()                   ? "in the " + vertical + " middle"
                      : vertical.empty()                     ? "on the " + horizontal
                                                             : "in the " + vertical + " " + horizontal;
  return std::string("a ") + size_word + kColours[shape] + " " + kShapes[shape] + " " + place +
         ", on a dark background";
}

Image draw_shape(int shape, int size, Dice& dice, std::string* caption) {
  // Each class has its hue; the shade varies a little so the classes are learnable but not trivial.
  static const double kHues[6][3] = {{0.9, 0.2, 0.2},   {0.2, 0.7, 0.25},   {0.2, 0.35, 0.95},
                                     {0.95, 0.8, 0.15}, {0.75, 0.25, 0.85}, {0.15, 0.8, 0.8}};
  const double r = size * dice.uniform(0.22, 0.36);
  const double cx = dice.uniform(r, size - r), cy = dice.uniform(r, size - r);
  const double shade = dice.uniform(0.75, 1.0);
  const double background = dice.uniform(0.02, 0.25);
  if (caption) *caption = describe_shape(shape, size, r, cx, cy);
  Image image(size, size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const bool in = inside(shape, x + 0.5 - cx, y + 0.5 - cy, r);
      for (int c = 0; c < 3; ++c) {
        const double v = in ? kHues[shape][c] * shade : background * (0.8 + 0.2 * c);
        image.at(x, y, c) = static_cast<uint8_t>(std::clamp(std::lround(v * 255.0), 0L, 255L));
      }
    }
  return image;
}

}  // namespace

int generate_demo_dataset(const std::string& dir, const DemoDatasetSpec& spec) {
  if (spec.images_per_class <= 0 || spec.image_size < 8)
    throw InputError("demo dataset needs at least 1 image per class and 8 px images");
  const auto& classes = demo_class_names();
  const nlohmann::json stamp = {{"generator", "repa-studio demo shapes"},
                                {"version", 1},
                                {"images_per_class", spec.images_per_class},
                                {"image_size", spec.image_size},
                                {"seed", spec.seed},
                                {"classes", classes},
                                {"captions", "sidecar .txt"}};
  const fs::path stamp_path = fs::path(dir) / "demo_dataset.json";
  if (fs::exists(stamp_path)) {
    std::ifstream in(stamp_path);
    std::stringstream text;
    text << in.rdbuf();
    const auto existing = nlohmann::json::parse(text.str(), nullptr, false);
    if (existing == stamp) return spec.images_per_class * static_cast<int>(classes.size());
  }
  fs::create_directories(dir);
  for (std::size_t k = 0; k < classes.size(); ++k) {
    const fs::path class_dir = fs::path(dir) / classes[k];
    fs::create_directories(class_dir);
    for (int i = 0; i < spec.images_per_class; ++i) {
      Dice dice(mix_seed(spec.seed, k, static_cast<uint64_t>(i)));
      char name[64];
      std::snprintf(name, sizeof(name), "%s_%03d.png", classes[k].c_str(), i);
      std::string caption;
      const fs::path image_path = class_dir / name;
      write_png(image_path.string(), draw_shape(static_cast<int>(k), spec.image_size, dice, &caption));
      io::write_text_atomically(fs::path(image_path).replace_extension(".txt").string(), caption + "\n");
    }
  }
  io::write_text_atomically(stamp_path.string(), stamp.dump(2) + "\n");
  return spec.images_per_class * static_cast<int>(classes.size());
}

}  // namespace repa::data
