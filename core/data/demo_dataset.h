// The demo's dataset, made on the spot so the demo needs nothing downloaded: small class-labelled PNGs of
// coloured shapes (one shape and hue per class, random position, size, shade and background), fully
// determined by the seed. Each image has a caption beside it (disc_000.png → disc_000.txt, "a large red disc in
// the upper left, on a dark background") for caption_strategy "textfile".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace repa::data {

struct DemoDatasetSpec {
  int images_per_class = 64;
  int image_size = 32;
  uint64_t seed = 0;
};

const std::vector<std::string>& demo_class_names();  // disc, square, triangle, ring, cross, stripes

// Writes <dir>/<class>/<class>_NNN.png and its caption <class>_NNN.txt. A folder already holding the same generation
// (its demo_dataset.json matches) is left alone. Returns the number of images in the folder.
int generate_demo_dataset(const std::string& dir, const DemoDatasetSpec& spec = {});

}  // namespace repa::data
