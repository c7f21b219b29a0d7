// Aspect-ratio bucketing against SimpleTuner. The reference rows below were printed by SimpleTuner's own
// TrainingSample.prepare / MultiaspectImage size functions and its metadata backend's
// meets_resolution_requirements (run from its source at the mirrored HEAD with StateTracker stubbed and no
// pixels, Python 3, one resolution-by-aspect map per configuration, sizes in the order listed), and by
// CPython's round(). Each configuration's rows must be reproduced in order: area rows depend on earlier ones.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>

#include "core/base/error.h"
#include "core/data/aspect_buckets.h"

using namespace repa::data;
using nlohmann::json;

namespace {

struct GeometryRow {
  const char* config;
  int w, h, inter_w, inter_h, resize_w, resize_h, target_w, target_h, top, left;
  const char* bucket;
};

// config, original W, H, intermediary W, H, resized-to W, H, target W, H, crop top, left, str(aspect_ratio)
const GeometryRow kGeometry[] = {
    {"pixel1024_center", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"pixel1024_center", 1920, 1080, 1820, 1024, 1820, 1024, 1792, 1024, 0, 14, "1.75"},
    {"pixel1024_center", 1080, 1920, 1044, 1856, 1044, 1856, 1024, 1856, 0, 10, "0.55"},
    {"pixel1024_center", 800, 600, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_center", 600, 800, 1024, 1365, 1024, 1365, 1024, 1344, 10, 0, "0.76"},
    {"pixel1024_center", 3000, 2000, 1536, 1024, 1536, 1024, 1536, 1024, 0, 0, "1.5"},
    {"pixel1024_center", 512, 768, 1024, 1536, 1024, 1536, 1024, 1536, 0, 0, "0.67"},
    {"pixel1024_center", 333, 517, 1030, 1600, 1030, 1600, 1024, 1600, 0, 3, "0.64"},
    {"pixel1024_center", 4000, 1000, 4096, 1024, 4096, 1024, 4096, 1024, 0, 0, "4.0"},
    {"pixel1024_center", 1000, 4000, 1024, 4096, 1024, 4096, 1024, 4096, 0, 0, "0.25"},
    {"pixel1024_center", 1023, 1025, 1024, 1026, 1024, 1026, 1024, 1024, 1, 0, "1.0"},
    {"pixel1024_center", 700, 700, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"pixel1024_center", 2560, 1440, 1820, 1024, 1820, 1024, 1792, 1024, 0, 14, "1.75"},
    {"pixel1024_center", 1200, 900, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_center", 640, 480, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_center", 1500, 1001, 1536, 1025, 1536, 1025, 1536, 1024, 0, 0, "1.5"},
    {"pixel1024_center", 257, 1999, 1024, 7964, 1024, 7964, 1024, 7872, 46, 0, "0.13"},
    {"pixel1024_center", 2048, 1536, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_center", 96, 64, 1536, 1024, 1536, 1024, 1536, 1024, 0, 0, "1.5"},
    {"pixel1024_center", 1366, 768, 1821, 1024, 1821, 1024, 1792, 1024, 0, 14, "1.75"},
    {"pixel1024_nocrop_center", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"pixel1024_nocrop_center", 1920, 1080, 1820, 1024, 1820, 1024, 1792, 1024, 0, 14, "1.75"},
    {"pixel1024_nocrop_center", 1080, 1920, 1044, 1856, 1044, 1856, 1024, 1856, 0, 10, "0.55"},
    {"pixel1024_nocrop_center", 800, 600, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_nocrop_center", 600, 800, 1024, 1365, 1024, 1365, 1024, 1344, 10, 0, "0.76"},
    {"pixel1024_nocrop_center", 3000, 2000, 1536, 1024, 1536, 1024, 1536, 1024, 0, 0, "1.5"},
    {"pixel1024_nocrop_center", 512, 768, 1024, 1536, 1024, 1536, 1024, 1536, 0, 0, "0.67"},
    {"pixel1024_nocrop_center", 333, 517, 1030, 1600, 1030, 1600, 1024, 1600, 0, 3, "0.64"},
    {"pixel1024_nocrop_center", 4000, 1000, 4096, 1024, 4096, 1024, 4096, 1024, 0, 0, "4.0"},
    {"pixel1024_nocrop_center", 1000, 4000, 1024, 4096, 1024, 4096, 1024, 4096, 0, 0, "0.25"},
    {"pixel1024_nocrop_center", 1023, 1025, 1024, 1026, 1024, 1026, 1024, 1024, 1, 0, "1.0"},
    {"pixel1024_nocrop_center", 700, 700, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"pixel1024_nocrop_center", 2560, 1440, 1820, 1024, 1820, 1024, 1792, 1024, 0, 14, "1.75"},
    {"pixel1024_nocrop_center", 1200, 900, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_nocrop_center", 640, 480, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_nocrop_center", 1500, 1001, 1536, 1025, 1536, 1025, 1536, 1024, 0, 0, "1.5"},
    {"pixel1024_nocrop_center", 257, 1999, 1024, 7964, 1024, 7964, 1024, 7872, 46, 0, "0.13"},
    {"pixel1024_nocrop_center", 2048, 1536, 1365, 1024, 1365, 1024, 1344, 1024, 0, 10, "1.31"},
    {"pixel1024_nocrop_center", 96, 64, 1536, 1024, 1536, 1024, 1536, 1024, 0, 0, "1.5"},
    {"pixel1024_nocrop_center", 1366, 768, 1821, 1024, 1821, 1024, 1792, 1024, 0, 14, "1.75"},
    {"pixel512_square_center", 1024, 1024, 512, 512, 512, 512, 512, 512, 0, 0, "1.0"},
    {"pixel512_square_center", 1920, 1080, 910, 512, 910, 512, 512, 512, 0, 199, "1.0"},
    {"pixel512_square_center", 1080, 1920, 512, 910, 512, 910, 512, 512, 199, 0, "1.0"},
    {"pixel512_square_center", 800, 600, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"pixel512_square_center", 600, 800, 512, 682, 512, 682, 512, 512, 85, 0, "1.0"},
    {"pixel512_square_center", 3000, 2000, 768, 512, 768, 512, 512, 512, 0, 128, "1.0"},
    {"pixel512_square_center", 512, 768, 512, 768, 512, 768, 512, 512, 128, 0, "1.0"},
    {"pixel512_square_center", 333, 517, 512, 794, 512, 794, 512, 512, 141, 0, "1.0"},
    {"pixel512_square_center", 4000, 1000, 2048, 512, 2048, 512, 512, 512, 0, 768, "1.0"},
    {"pixel512_square_center", 1000, 4000, 512, 2048, 512, 2048, 512, 512, 768, 0, "1.0"},
    {"pixel512_square_center", 1023, 1025, 512, 513, 512, 513, 512, 512, 0, 0, "1.0"},
    {"pixel512_square_center", 700, 700, 512, 512, 512, 512, 512, 512, 0, 0, "1.0"},
    {"pixel512_square_center", 2560, 1440, 910, 512, 910, 512, 512, 512, 0, 199, "1.0"},
    {"pixel512_square_center", 1200, 900, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"pixel512_square_center", 640, 480, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"pixel512_square_center", 1500, 1001, 767, 512, 767, 512, 512, 512, 0, 127, "1.0"},
    {"pixel512_square_center", 257, 1999, 512, 3982, 512, 3982, 512, 512, 1735, 0, "1.0"},
    {"pixel512_square_center", 2048, 1536, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"pixel512_square_center", 96, 64, 768, 512, 768, 512, 512, 512, 0, 128, "1.0"},
    {"pixel512_square_center", 1366, 768, 910, 512, 910, 512, 512, 512, 0, 199, "1.0"},
    {"area1_center", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1_center", 1920, 1080, 1365, 768, 1365, 768, 1344, 768, 0, 10, "1.75"},
    {"area1_center", 1080, 1920, 768, 1365, 768, 1365, 768, 1344, 10, 0, "0.57"},
    {"area1_center", 800, 600, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_center", 600, 800, 896, 1194, 896, 1194, 896, 1152, 21, 0, "0.78"},
    {"area1_center", 3000, 2000, 1280, 853, 1280, 853, 1280, 832, 10, 0, "1.54"},
    {"area1_center", 512, 768, 853, 1280, 853, 1280, 832, 1280, 0, 10, "0.65"},
    {"area1_center", 333, 517, 832, 1291, 832, 1291, 832, 1280, 5, 0, "0.65"},
    {"area1_center", 4000, 1000, 2048, 512, 2048, 512, 2048, 512, 0, 0, "4.0"},
    {"area1_center", 1000, 4000, 512, 2048, 512, 2048, 512, 2048, 0, 0, "0.25"},
    {"area1_center", 1023, 1025, 1024, 1026, 1024, 1026, 1024, 1024, 1, 0, "1.0"},
    {"area1_center", 700, 700, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1_center", 2560, 1440, 1365, 768, 1365, 768, 1344, 768, 0, 10, "1.75"},
    {"area1_center", 1200, 900, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_center", 640, 480, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_center", 1500, 1001, 1280, 854, 1280, 854, 1280, 832, 11, 0, "1.54"},
    {"area1_center", 257, 1999, 384, 2986, 384, 2986, 384, 2816, 85, 0, "0.14"},
    {"area1_center", 2048, 1536, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_center", 96, 64, 1280, 853, 1280, 853, 1280, 832, 10, 0, "1.54"},
    {"area1_center", 1366, 768, 1366, 768, 1366, 768, 1344, 768, 0, 11, "1.75"},
    {"area1_nocrop_corner", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1_nocrop_corner", 1920, 1080, 1365, 768, 1365, 768, 1344, 768, 0, 0, "1.75"},
    {"area1_nocrop_corner", 1080, 1920, 768, 1365, 768, 1365, 768, 1344, 0, 0, "0.57"},
    {"area1_nocrop_corner", 800, 600, 1194, 896, 1194, 896, 1152, 896, 0, 0, "1.29"},
    {"area1_nocrop_corner", 600, 800, 896, 1194, 896, 1194, 896, 1152, 0, 0, "0.78"},
    {"area1_nocrop_corner", 3000, 2000, 1280, 853, 1280, 853, 1280, 832, 0, 0, "1.54"},
    {"area1_nocrop_corner", 512, 768, 853, 1280, 853, 1280, 832, 1280, 0, 0, "0.65"},
    {"area1_nocrop_corner", 333, 517, 832, 1291, 832, 1291, 832, 1280, 0, 0, "0.65"},
    {"area1_nocrop_corner", 4000, 1000, 2048, 512, 2048, 512, 2048, 512, 0, 0, "4.0"},
    {"area1_nocrop_corner", 1000, 4000, 512, 2048, 512, 2048, 512, 2048, 0, 0, "0.25"},
    {"area1_nocrop_corner", 1023, 1025, 1024, 1026, 1024, 1026, 1024, 1024, 0, 0, "1.0"},
    {"area1_nocrop_corner", 700, 700, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1_nocrop_corner", 2560, 1440, 1365, 768, 1365, 768, 1344, 768, 0, 0, "1.75"},
    {"area1_nocrop_corner", 1200, 900, 1194, 896, 1194, 896, 1152, 896, 0, 0, "1.29"},
    {"area1_nocrop_corner", 640, 480, 1194, 896, 1194, 896, 1152, 896, 0, 0, "1.29"},
    {"area1_nocrop_corner", 1500, 1001, 1280, 854, 1280, 854, 1280, 832, 0, 0, "1.54"},
    {"area1_nocrop_corner", 257, 1999, 384, 2986, 384, 2986, 384, 2816, 0, 0, "0.14"},
    {"area1_nocrop_corner", 2048, 1536, 1194, 896, 1194, 896, 1152, 896, 0, 0, "1.29"},
    {"area1_nocrop_corner", 96, 64, 1280, 853, 1280, 853, 1280, 832, 0, 0, "1.54"},
    {"area1_nocrop_corner", 1366, 768, 1366, 768, 1366, 768, 1344, 768, 0, 0, "1.75"},
    {"area1.048576_center", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1.048576_center", 1920, 1080, 1365, 768, 1365, 768, 1344, 768, 0, 10, "1.75"},
    {"area1.048576_center", 1080, 1920, 768, 1365, 768, 1365, 768, 1344, 10, 0, "0.57"},
    {"area1.048576_center", 800, 600, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1.048576_center", 600, 800, 896, 1194, 896, 1194, 896, 1152, 21, 0, "0.78"},
    {"area1.048576_center", 3000, 2000, 1280, 853, 1280, 853, 1280, 832, 10, 0, "1.54"},
    {"area1.048576_center", 512, 768, 853, 1280, 853, 1280, 832, 1280, 0, 10, "0.65"},
    {"area1.048576_center", 333, 517, 832, 1291, 832, 1291, 832, 1280, 5, 0, "0.65"},
    {"area1.048576_center", 4000, 1000, 2048, 512, 2048, 512, 2048, 512, 0, 0, "4.0"},
    {"area1.048576_center", 1000, 4000, 512, 2048, 512, 2048, 512, 2048, 0, 0, "0.25"},
    {"area1.048576_center", 1023, 1025, 1024, 1026, 1024, 1026, 1024, 1024, 1, 0, "1.0"},
    {"area1.048576_center", 700, 700, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1.048576_center", 2560, 1440, 1365, 768, 1365, 768, 1344, 768, 0, 10, "1.75"},
    {"area1.048576_center", 1200, 900, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1.048576_center", 640, 480, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1.048576_center", 1500, 1001, 1280, 854, 1280, 854, 1280, 832, 11, 0, "1.54"},
    {"area1.048576_center", 257, 1999, 384, 2986, 384, 2986, 384, 2816, 85, 0, "0.14"},
    {"area1.048576_center", 2048, 1536, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1.048576_center", 96, 64, 1280, 853, 1280, 853, 1280, 832, 10, 0, "1.54"},
    {"area1.048576_center", 1366, 768, 1366, 768, 1366, 768, 1344, 768, 0, 11, "1.75"},
    {"area0.25_square_center", 1024, 1024, 512, 512, 512, 512, 512, 512, 0, 0, "1.0"},
    {"area0.25_square_center", 1920, 1080, 910, 512, 910, 512, 512, 512, 0, 199, "1.0"},
    {"area0.25_square_center", 1080, 1920, 512, 910, 512, 910, 512, 512, 199, 0, "1.0"},
    {"area0.25_square_center", 800, 600, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"area0.25_square_center", 600, 800, 512, 682, 512, 682, 512, 512, 85, 0, "1.0"},
    {"area0.25_square_center", 3000, 2000, 768, 512, 768, 512, 512, 512, 0, 128, "1.0"},
    {"area0.25_square_center", 512, 768, 512, 768, 512, 768, 512, 512, 128, 0, "1.0"},
    {"area0.25_square_center", 333, 517, 512, 796, 512, 796, 512, 512, 142, 0, "1.0"},
    {"area0.25_square_center", 4000, 1000, 2048, 512, 2048, 512, 512, 512, 0, 768, "1.0"},
    {"area0.25_square_center", 1000, 4000, 512, 2048, 512, 2048, 512, 512, 768, 0, "1.0"},
    {"area0.25_square_center", 1023, 1025, 512, 513, 512, 513, 512, 512, 0, 0, "1.0"},
    {"area0.25_square_center", 700, 700, 512, 512, 512, 512, 512, 512, 0, 0, "1.0"},
    {"area0.25_square_center", 2560, 1440, 910, 512, 910, 512, 512, 512, 0, 199, "1.0"},
    {"area0.25_square_center", 1200, 900, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"area0.25_square_center", 640, 480, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"area0.25_square_center", 1500, 1001, 767, 512, 767, 512, 512, 512, 0, 127, "1.0"},
    {"area0.25_square_center", 257, 1999, 512, 3988, 512, 3988, 512, 512, 1738, 0, "1.0"},
    {"area0.25_square_center", 2048, 1536, 682, 512, 682, 512, 512, 512, 0, 85, "1.0"},
    {"area0.25_square_center", 96, 64, 768, 512, 768, 512, 512, 512, 0, 128, "1.0"},
    {"area0.25_square_center", 1366, 768, 910, 512, 910, 512, 512, 512, 0, 199, "1.0"},
    {"area0.6_a32_r1_center", 1024, 1024, 768, 768, 768, 768, 768, 768, 0, 0, "1.0"},
    {"area0.6_a32_r1_center", 1920, 1080, 1024, 576, 1024, 576, 1024, 576, 0, 0, "1.8"},
    {"area0.6_a32_r1_center", 1080, 1920, 608, 1080, 608, 1080, 608, 992, 44, 0, "0.6"},
    {"area0.6_a32_r1_center", 800, 600, 896, 672, 896, 672, 864, 672, 0, 16, "1.3"},
    {"area0.6_a32_r1_center", 600, 800, 672, 896, 672, 896, 672, 864, 16, 0, "0.8"},
    {"area0.6_a32_r1_center", 3000, 2000, 960, 640, 960, 640, 928, 640, 0, 16, "1.4"},
    {"area0.6_a32_r1_center", 512, 768, 640, 960, 640, 960, 640, 928, 16, 0, "0.7"},
    {"area0.6_a32_r1_center", 333, 517, 639, 992, 639, 992, 608, 992, 0, 15, "0.6"},
    {"area0.6_a32_r1_center", 4000, 1000, 1536, 384, 1536, 384, 1536, 384, 0, 0, "4.0"},
    {"area0.6_a32_r1_center", 1000, 4000, 432, 1728, 432, 1728, 352, 1728, 0, 40, "0.2"},
    {"area0.6_a32_r1_center", 1023, 1025, 768, 770, 768, 770, 768, 768, 1, 0, "1.0"},
    {"area0.6_a32_r1_center", 700, 700, 768, 768, 768, 768, 768, 768, 0, 0, "1.0"},
    {"area0.6_a32_r1_center", 2560, 1440, 1024, 576, 1024, 576, 1024, 576, 0, 0, "1.8"},
    {"area0.6_a32_r1_center", 1200, 900, 896, 672, 896, 672, 864, 672, 0, 16, "1.3"},
    {"area0.6_a32_r1_center", 640, 480, 896, 672, 896, 672, 864, 672, 0, 16, "1.3"},
    {"area0.6_a32_r1_center", 1500, 1001, 959, 640, 959, 640, 928, 640, 0, 15, "1.4"},
    {"area0.6_a32_r1_center", 257, 1999, 312, 2432, 312, 2432, 256, 2432, 0, 28, "0.1"},
    {"area0.6_a32_r1_center", 2048, 1536, 896, 672, 896, 672, 864, 672, 0, 16, "1.3"},
    {"area0.6_a32_r1_center", 96, 64, 960, 640, 960, 640, 928, 640, 0, 16, "1.4"},
    {"area0.6_a32_r1_center", 1366, 768, 1024, 576, 1024, 576, 1024, 576, 0, 0, "1.8"},
    {"pixel768_a8_r3_corner", 1024, 1024, 768, 768, 768, 768, 768, 768, 0, 0, "1.0"},
    {"pixel768_a8_r3_corner", 1920, 1080, 1368, 769, 1368, 769, 1368, 768, 0, 0, "1.781"},
    {"pixel768_a8_r3_corner", 1080, 1920, 769, 1368, 769, 1368, 768, 1368, 0, 0, "0.561"},
    {"pixel768_a8_r3_corner", 800, 600, 1024, 768, 1024, 768, 1024, 768, 0, 0, "1.333"},
    {"pixel768_a8_r3_corner", 600, 800, 768, 1024, 768, 1024, 768, 1024, 0, 0, "0.75"},
    {"pixel768_a8_r3_corner", 3000, 2000, 1152, 768, 1152, 768, 1152, 768, 0, 0, "1.5"},
    {"pixel768_a8_r3_corner", 512, 768, 768, 1152, 768, 1152, 768, 1152, 0, 0, "0.667"},
    {"pixel768_a8_r3_corner", 333, 517, 768, 1192, 768, 1192, 768, 1192, 0, 0, "0.644"},
    {"pixel768_a8_r3_corner", 4000, 1000, 3072, 768, 3072, 768, 3072, 768, 0, 0, "4.0"},
    {"pixel768_a8_r3_corner", 1000, 4000, 768, 3072, 768, 3072, 768, 3072, 0, 0, "0.25"},
    {"pixel768_a8_r3_corner", 1023, 1025, 768, 769, 768, 769, 768, 768, 0, 0, "1.0"},
    {"pixel768_a8_r3_corner", 700, 700, 768, 768, 768, 768, 768, 768, 0, 0, "1.0"},
    {"pixel768_a8_r3_corner", 2560, 1440, 1368, 769, 1368, 769, 1368, 768, 0, 0, "1.781"},
    {"pixel768_a8_r3_corner", 1200, 900, 1024, 768, 1024, 768, 1024, 768, 0, 0, "1.333"},
    {"pixel768_a8_r3_corner", 640, 480, 1024, 768, 1024, 768, 1024, 768, 0, 0, "1.333"},
    {"pixel768_a8_r3_corner", 1500, 1001, 1152, 768, 1152, 768, 1152, 768, 0, 0, "1.5"},
    {"pixel768_a8_r3_corner", 257, 1999, 768, 5973, 768, 5973, 768, 5952, 0, 0, "0.129"},
    {"pixel768_a8_r3_corner", 2048, 1536, 1024, 768, 1024, 768, 1024, 768, 0, 0, "1.333"},
    {"pixel768_a8_r3_corner", 96, 64, 1152, 768, 1152, 768, 1152, 768, 0, 0, "1.5"},
    {"pixel768_a8_r3_corner", 1366, 768, 1368, 769, 1368, 769, 1368, 768, 0, 0, "1.781"},
    {"area1_closest_center", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1_closest_center", 1920, 1080, 1472, 828, 1472, 828, 1472, 704, 62, 0, "2.09"},
    {"area1_closest_center", 1080, 1920, 828, 1472, 828, 1472, 704, 1472, 0, 62, "0.48"},
    {"area1_closest_center", 800, 600, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_closest_center", 600, 800, 896, 1194, 896, 1194, 896, 1152, 21, 0, "0.78"},
    {"area1_closest_center", 3000, 2000, 1280, 853, 1280, 853, 1280, 832, 10, 0, "1.54"},
    {"area1_closest_center", 512, 768, 896, 1344, 896, 1344, 896, 1152, 96, 0, "0.78"},
    {"area1_closest_center", 333, 517, 896, 1391, 896, 1391, 896, 1152, 119, 0, "0.78"},
    {"area1_closest_center", 4000, 1000, 2816, 704, 2816, 704, 1472, 704, 0, 672, "2.09"},
    {"area1_closest_center", 1000, 4000, 704, 2816, 704, 2816, 704, 1472, 672, 0, "0.48"},
    {"area1_closest_center", 1023, 1025, 1024, 1026, 1024, 1026, 1024, 1024, 1, 0, "1.0"},
    {"area1_closest_center", 700, 700, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1_closest_center", 2560, 1440, 1472, 828, 1472, 828, 1472, 704, 62, 0, "2.09"},
    {"area1_closest_center", 1200, 900, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_closest_center", 640, 480, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_closest_center", 1500, 1001, 1280, 854, 1280, 854, 1280, 832, 11, 0, "1.54"},
    {"area1_closest_center", 257, 1999, 704, 5475, 704, 5475, 704, 1472, 2001, 0, "0.48"},
    {"area1_closest_center", 2048, 1536, 1194, 896, 1194, 896, 1152, 896, 0, 21, "1.29"},
    {"area1_closest_center", 96, 64, 1280, 853, 1280, 853, 1280, 832, 10, 0, "1.54"},
    {"area1_closest_center", 1366, 768, 1472, 827, 1472, 827, 1472, 704, 61, 0, "2.09"},
    {"pixel1024_downsample_center", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"pixel1024_downsample_center", 1920, 1080, 1820, 1024, 2304, 1296, 1792, 1024, 136, 256, "1.75"},
    {"pixel1024_downsample_center", 1080, 1920, 1044, 1856, 1296, 2304, 1024, 1856, 224, 136, "0.55"},
    {"pixel1024_downsample_center", 800, 600, 1365, 1024, 1728, 1296, 1344, 1024, 136, 192, "1.31"},
    {"pixel1024_downsample_center", 600, 800, 1024, 1365, 1296, 1728, 1024, 1344, 192, 136, "0.76"},
    {"pixel1024_downsample_center", 3000, 2000, 1536, 1024, 1920, 1280, 1536, 1024, 128, 192, "1.5"},
    {"pixel1024_downsample_center", 512, 768, 1024, 1536, 1280, 1920, 1024, 1536, 192, 128, "0.67"},
    {"pixel1024_downsample_center", 333, 517, 1030, 1600, 1280, 1987, 1024, 1600, 193, 128, "0.64"},
    {"pixel1024_downsample_center", 4000, 1000, 4096, 1024, 5120, 1280, 4096, 1024, 128, 512, "4.0"},
    {"pixel1024_downsample_center", 1000, 4000, 1024, 4096, 1280, 5120, 1024, 4096, 512, 128, "0.25"},
    {"pixel1024_downsample_center", 1023, 1025, 1024, 1026, 1280, 1282, 1024, 1024, 129, 128, "1.0"},
    {"pixel1024_downsample_center", 700, 700, 1024, 1024, 1280, 1280, 1024, 1024, 128, 128, "1.0"},
    {"pixel1024_downsample_center", 2560, 1440, 1820, 1024, 2304, 1296, 1792, 1024, 136, 256, "1.75"},
    {"pixel1024_downsample_center", 1200, 900, 1365, 1024, 1728, 1296, 1344, 1024, 136, 192, "1.31"},
    {"pixel1024_downsample_center", 640, 480, 1365, 1024, 1728, 1296, 1344, 1024, 136, 192, "1.31"},
    {"pixel1024_downsample_center", 1500, 1001, 1536, 1025, 1920, 1281, 1536, 1024, 128, 192, "1.5"},
    {"pixel1024_downsample_center", 257, 1999, 1024, 7964, 1280, 9956, 1024, 7872, 1042, 128, "0.13"},
    {"pixel1024_downsample_center", 2048, 1536, 1365, 1024, 1728, 1296, 1344, 1024, 136, 192, "1.31"},
    {"pixel1024_downsample_center", 96, 64, 1536, 1024, 1920, 1280, 1536, 1024, 128, 192, "1.5"},
    {"pixel1024_downsample_center", 1366, 768, 1821, 1024, 2304, 1295, 1792, 1024, 135, 256, "1.75"},
    {"area1_downsample_center", 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 0, 0, "1.0"},
    {"area1_downsample_center", 1920, 1080, 1365, 768, 1600, 900, 1344, 768, 66, 128, "1.75"},
    {"area1_downsample_center", 1080, 1920, 768, 1365, 900, 1600, 768, 1344, 128, 66, "0.57"},
    {"area1_downsample_center", 800, 600, 1194, 896, 1408, 1056, 1152, 896, 80, 128, "1.29"},
    {"area1_downsample_center", 600, 800, 896, 1194, 1056, 1408, 896, 1152, 128, 80, "0.78"},
    {"area1_downsample_center", 3000, 2000, 1280, 853, 1536, 1024, 1280, 832, 96, 128, "1.54"},
    {"area1_downsample_center", 512, 768, 853, 1280, 1024, 1536, 832, 1280, 128, 96, "0.65"},
    {"area1_downsample_center", 333, 517, 832, 1291, 989, 1536, 832, 1280, 128, 78, "0.65"},
    {"area1_downsample_center", 4000, 1000, 2048, 512, 2560, 640, 2048, 512, 64, 256, "4.0"},
    {"area1_downsample_center", 1000, 4000, 512, 2048, 640, 2560, 512, 2048, 256, 64, "0.25"},
    {"area1_downsample_center", 1023, 1025, 1024, 1026, 1216, 1219, 1024, 1024, 97, 96, "1.0"},
    {"area1_downsample_center", 700, 700, 1024, 1024, 1216, 1216, 1024, 1024, 96, 96, "1.0"},
    {"area1_downsample_center", 2560, 1440, 1365, 768, 1600, 900, 1344, 768, 66, 128, "1.75"},
    {"area1_downsample_center", 1200, 900, 1194, 896, 1408, 1056, 1152, 896, 80, 128, "1.29"},
    {"area1_downsample_center", 640, 480, 1194, 896, 1408, 1056, 1152, 896, 80, 128, "1.29"},
    {"area1_downsample_center", 1500, 1001, 1280, 854, 1534, 1024, 1280, 832, 96, 127, "1.54"},
    {"area1_downsample_center", 257, 1999, 384, 2986, 448, 3484, 384, 2816, 334, 32, "0.14"},
    {"area1_downsample_center", 2048, 1536, 1194, 896, 1408, 1056, 1152, 896, 80, 128, "1.29"},
    {"area1_downsample_center", 96, 64, 1280, 853, 1536, 1024, 1280, 832, 96, 128, "1.54"},
    {"area1_downsample_center", 1366, 768, 1366, 768, 1600, 899, 1344, 768, 65, 128, "1.75"},
};

// The configurations above as multidatabackend.json entries and args.
std::map<std::string, std::pair<json, json>> configurations() {
  const json a64 = {{"aspect_bucket_alignment", 64}, {"aspect_bucket_rounding", 2}};
  std::map<std::string, std::pair<json, json>> c;
  c["pixel1024_center"] = {{{"resolution", 1024},
                            {"resolution_type", "pixel"},
                            {"crop", true},
                            {"crop_style", "center"},
                            {"crop_aspect", "preserve"}},
                           a64};
  c["pixel1024_nocrop_center"] = {
      {{"resolution", 1024}, {"resolution_type", "pixel"}, {"crop", false}, {"crop_style", "center"}}, a64};
  c["pixel512_square_center"] = {{{"resolution", 512},
                                  {"resolution_type", "pixel"},
                                  {"crop", true},
                                  {"crop_style", "center"},
                                  {"crop_aspect", "square"}},
                                 a64};
  c["area1_center"] = {{{"resolution", 1.0},
                        {"resolution_type", "area"},
                        {"crop", true},
                        {"crop_style", "center"},
                        {"crop_aspect", "preserve"}},
                       a64};
  c["area1_nocrop_corner"] = {
      {{"resolution", 1.0}, {"resolution_type", "area"}, {"crop", false}, {"crop_style", "corner"}}, a64};
  // pixel_area 1024 is area 1.048576, as SimpleTuner's factory converts it.
  c["area1.048576_center"] = {{{"resolution", 1024},
                               {"resolution_type", "pixel_area"},
                               {"crop", true},
                               {"crop_style", "center"},
                               {"crop_aspect", "preserve"}},
                              a64};
  c["area0.25_square_center"] = {{{"resolution", 0.25},
                                  {"resolution_type", "area"},
                                  {"crop", true},
                                  {"crop_style", "center"},
                                  {"crop_aspect", "square"}},
                                 a64};
  c["area0.6_a32_r1_center"] = {{{"resolution", 0.6},
                                 {"resolution_type", "area"},
                                 {"crop", true},
                                 {"crop_style", "center"},
                                 {"crop_aspect", "preserve"}},
                                {{"--aspect_bucket_alignment", 32}, {"--aspect_bucket_rounding", 1}}};
  c["pixel768_a8_r3_corner"] = {{{"resolution", 768},
                                 {"resolution_type", "pixel"},
                                 {"crop", true},
                                 {"crop_style", "corner"},
                                 {"crop_aspect", "preserve"}},
                                {{"aspect_bucket_alignment", 8}, {"aspect_bucket_rounding", 3}}};
  c["area1_closest_center"] = {{{"resolution", 1.0},
                                {"resolution_type", "area"},
                                {"crop", true},
                                {"crop_style", "center"},
                                {"crop_aspect", "closest"},
                                {"crop_aspect_buckets", {0.5, 0.75, 1.0, 1.33, 1.5, 2.0}}},
                               a64};
  c["pixel1024_downsample_center"] = {{{"resolution", 1024},
                                       {"resolution_type", "pixel"},
                                       {"crop", true},
                                       {"crop_style", "center"},
                                       {"crop_aspect", "preserve"},
                                       {"maximum_image_size", 1536},
                                       {"target_downsample_size", 1280}},
                                      a64};
  c["area1_downsample_center"] = {{{"resolution", 1.0},
                                   {"resolution_type", "area"},
                                   {"crop", true},
                                   {"crop_style", "center"},
                                   {"crop_aspect", "preserve"},
                                   {"maximum_image_size", 2.0},
                                   {"target_downsample_size", 1.5}},
                                  a64};
  return c;
}

struct MinimumRow {
  const char* config;
  int w, h;
  bool passes;
};

const MinimumRow kMinimum[] = {
    {"pixel1024", 1024, 1024, true},
    {"pixel1024", 1023, 2000, false},
    {"pixel1024", 2000, 1023, false},
    {"pixel1024", 768, 768, false},
    {"pixel1024", 767, 4000, false},
    {"pixel1024", 1000, 1000, false},
    {"pixel1024", 1000, 1049, false},
    {"pixel1024", 1001, 1048, false},
    {"pixel1024", 500, 2100, false},
    {"pixel1024", 1024, 1, false},
    {"pixel768", 1024, 1024, true},
    {"pixel768", 1023, 2000, true},
    {"pixel768", 2000, 1023, true},
    {"pixel768", 768, 768, true},
    {"pixel768", 767, 4000, false},
    {"pixel768", 1000, 1000, true},
    {"pixel768", 1000, 1049, true},
    {"pixel768", 1001, 1048, true},
    {"pixel768", 500, 2100, false},
    {"pixel768", 1024, 1, false},
    {"area1", 1024, 1024, true},
    {"area1", 1023, 2000, true},
    {"area1", 2000, 1023, true},
    {"area1", 768, 768, false},
    {"area1", 767, 4000, true},
    {"area1", 1000, 1000, true},
    {"area1", 1000, 1049, true},
    {"area1", 1001, 1048, true},
    {"area1", 500, 2100, true},
    {"area1", 1024, 1, false},
    {"area1_square", 1024, 1024, true},
    {"area1_square", 1023, 2000, true},
    {"area1_square", 2000, 1023, true},
    {"area1_square", 768, 768, false},
    {"area1_square", 767, 4000, false},
    {"area1_square", 1000, 1000, true},
    {"area1_square", 1000, 1049, true},
    {"area1_square", 1001, 1048, true},
    {"area1_square", 500, 2100, false},
    {"area1_square", 1024, 1, false},
    {"area1.048576_preserve", 1024, 1024, true},
    {"area1.048576_preserve", 1023, 2000, true},
    {"area1.048576_preserve", 2000, 1023, true},
    {"area1.048576_preserve", 768, 768, false},
    {"area1.048576_preserve", 767, 4000, true},
    {"area1.048576_preserve", 1000, 1000, false},
    {"area1.048576_preserve", 1000, 1049, true},
    {"area1.048576_preserve", 1001, 1048, true},
    {"area1.048576_preserve", 500, 2100, true},
    {"area1.048576_preserve", 1024, 1, false},
    {"area0.5_square", 1024, 1024, true},
    {"area0.5_square", 1023, 2000, true},
    {"area0.5_square", 2000, 1023, true},
    {"area0.5_square", 768, 768, true},
    {"area0.5_square", 767, 4000, true},
    {"area0.5_square", 1000, 1000, true},
    {"area0.5_square", 1000, 1049, true},
    {"area0.5_square", 1001, 1048, true},
    {"area0.5_square", 500, 2100, false},
    {"area0.5_square", 1024, 1, false},
};

std::string reason_for(const std::string& config, int w, int h) {
  json d;
  if (config == "pixel1024") d = {{"resolution", 1024}, {"resolution_type", "pixel"}, {"minimum_image_size", 1024}};
  if (config == "pixel768")
    d = {{"resolution", 1024},
         {"resolution_type", "pixel"},
         {"minimum_image_size", 768},
         {"crop", true},
         {"crop_aspect", "square"}};
  if (config == "area1") d = {{"resolution", 1.0}, {"resolution_type", "area"}, {"minimum_image_size", 1.0}};
  if (config == "area1_square")
    d = {{"resolution", 1.0},
         {"resolution_type", "area"},
         {"minimum_image_size", 1.0},
         {"crop", true},
         {"crop_aspect", "square"}};
  // pixel_area converts minimum_image_size 1024 px to 1.048576 MP.
  if (config == "area1.048576_preserve")
    d = {{"resolution", 1024},
         {"resolution_type", "pixel_area"},
         {"minimum_image_size", 1024},
         {"crop", true},
         {"crop_aspect", "preserve"}};
  if (config == "area0.5_square")
    d = {{"resolution", 0.5},
         {"resolution_type", "area"},
         {"minimum_image_size", 0.5},
         {"crop", true},
         {"crop_aspect", "square"}};
  REQUIRE_MESSAGE(!d.is_null(), config);
  return too_small_reason(read_bucket_settings(d, json::object(), "sdxl", "test"), w, h);
}

struct RoundRow {
  double x;
  int digits;
  double expected;
};
const RoundRow kRound[] = {
    {1.005, 2, 1.0},
    {0.125, 2, 0.12},
    {0.675, 2, 0.68},
    {1.775, 2, 1.77},
    {2.675, 2, 2.67},
    {0.3333333333333333, 2, 0.33},
    {1.7777777777777777, 2, 1.78},
    {0.5625, 2, 0.56},
    {1.3333333, 2, 1.33},
    {2.345, 2, 2.35},
    {1.7777777777777777, 3, 1.778},
};

struct MultipleRow {
  double value;
  int multiple, expected;
};
const MultipleRow kMultiple[] = {
    {32, 64, 64}, {96, 64, 128}, {160, 64, 128}, {1023.9, 64, 1024},
    {20, 64, 64}, {4, 8, 8},     {12, 8, 16},    {1365.3, 64, 1344},
};

}  // namespace

TEST_CASE("round() and the multiple rounding follow CPython") {
  for (const auto& r : kRound) {
    CAPTURE(r.x);
    CHECK(python_round(r.x, r.digits) == r.expected);
  }
  for (const auto& m : kMultiple) {
    CAPTURE(m.value);
    CHECK(round_to_multiple(m.value, m.multiple) == m.expected);
  }
  CHECK(python_float_str(1.0, 2) == "1.0");
  CHECK(python_float_str(1.75, 2) == "1.75");
  CHECK(python_float_str(0.5, 3) == "0.5");
}

TEST_CASE("geometry equals SimpleTuner's TrainingSample.prepare on every reference row") {
  const auto configs = configurations();
  std::map<std::string, AspectBucketer> bucketers;
  int compared = 0;
  std::mt19937_64 rng(7);
  for (const auto& r : kGeometry) {
    const auto c = configs.find(r.config);
    REQUIRE_MESSAGE(c != configs.end(), r.config);
    auto it = bucketers.find(r.config);
    if (it == bucketers.end())
      it = bucketers
               .emplace(r.config, AspectBucketer(read_bucket_settings(c->second.first, c->second.second, "", r.config)))
               .first;
    const SampleGeometry g = it->second.prepare(r.w, r.h, rng);
    INFO(r.config << " " << r.w << "x" << r.h);
    CHECK(g.intermediary_width == r.inter_w);
    CHECK(g.intermediary_height == r.inter_h);
    CHECK(g.resize_width == r.resize_w);
    CHECK(g.resize_height == r.resize_h);
    CHECK(g.target_width == r.target_w);
    CHECK(g.target_height == r.target_h);
    CHECK(g.crop_top == r.top);
    CHECK(g.crop_left == r.left);
    CHECK(g.bucket == r.bucket);
    ++compared;
  }
  CHECK(compared == 240);
}

TEST_CASE("the resolution-by-aspect map fixes a bucket's target size to the first image seen") {
  // Reference (SimpleTuner, area 1.0, alignment 64, rounding 1, centre crop): 1900x1000 alone trains at
  // 1408x768 cropped at (0, 25); after 1700x1000 stored bucket 1.8 as 1344x768, it trains at 1344x768, (0, 57).
  const json d = {{"resolution", 1.0},
                  {"resolution_type", "area"},
                  {"crop", true},
                  {"crop_style", "center"},
                  {"crop_aspect", "preserve"}};
  const json args = {{"aspect_bucket_rounding", 1}};
  std::mt19937_64 rng(1);
  AspectBucketer fresh(read_bucket_settings(d, args, "sdxl", "t"));
  const SampleGeometry alone = fresh.prepare(1900, 1000, rng);
  CHECK(alone.bucket == "1.8");
  CHECK(alone.target_width == 1408);
  CHECK(alone.crop_left == 25);
  AspectBucketer seen(read_bucket_settings(d, args, "sdxl", "t"));
  const SampleGeometry first = seen.prepare(1700, 1000, rng);
  const SampleGeometry later = seen.prepare(1900, 1000, rng);
  CHECK(first.bucket == "1.8");
  CHECK(seen.resolution_map().at(1.0).at("1.8") == std::make_pair(1344, 768));
  CHECK(later.bucket == "1.8");
  CHECK(later.target_width == 1344);
  CHECK(later.target_height == 768);
  CHECK(later.resize_width == 1459);
  CHECK(later.crop_left == 57);
}

TEST_CASE("too-small images are skipped as SimpleTuner's meets_resolution_requirements decides") {
  int compared = 0;
  for (const auto& r : kMinimum) {
    INFO(r.config << " " << r.w << "x" << r.h);
    const std::string reason = reason_for(r.config, r.w, r.h);
    CHECK(reason.empty() == r.passes);
    if (!r.passes) CHECK(reason.find(std::to_string(r.w) + "x" + std::to_string(r.h)) != std::string::npos);
    ++compared;
  }
  CHECK(compared == 60);
}

TEST_CASE("properties over many sizes: aligned targets, crops inside the resized image, stable buckets") {
  std::mt19937_64 sizes(2024);
  const json styles[] = {"center", "corner", "random"};
  const json aspects[] = {"square", "preserve", "closest", "random"};
  int checked = 0;
  for (const json& type : {json("pixel"), json("area"), json("pixel_area")})
    for (const json& style : styles)
      for (const json& aspect : aspects)
        for (bool crop : {true, false}) {
          json d = {{"resolution", type == "area" ? json(1.0) : json(1024)},
                    {"resolution_type", type},
                    {"crop", crop},
                    {"crop_style", style},
                    {"crop_aspect", aspect},
                    {"crop_aspect_buckets", {0.5, 0.75, 1.0, 1.5, 2.0}}};
          AspectBucketer bucketer(read_bucket_settings(d, json::object(), "sdxl", "props"));
          std::mt19937_64 rng(11);
          for (int i = 0; i < 200; ++i) {
            const int w = 64 + static_cast<int>(uniform_below(sizes, 4000));
            const int h = 64 + static_cast<int>(uniform_below(sizes, 4000));
            const SampleGeometry g = bucketer.prepare(w, h, rng);
            INFO(d.dump() << " " << w << "x" << h);
            CHECK(g.target_width % 64 == 0);
            CHECK(g.target_height % 64 == 0);
            CHECK(g.crop_left >= 0);
            CHECK(g.crop_top >= 0);
            CHECK(g.crop_left + g.target_width <= g.resize_width);
            CHECK(g.crop_top + g.target_height <= g.resize_height);
            CHECK(g.bucket == python_float_str(image_aspect(g.target_width, g.target_height, 2), 2));
            if (crop && aspect == "square") CHECK(g.bucket == "1.0");
            ++checked;
          }
          // Every image of a bucket trains at that bucket's one size in area mode (the stored map).
          for (const auto& [mp, by_aspect] : bucketer.resolution_map())
            for (const auto& [key, size] : by_aspect) CHECK(size.first % 64 == 0);
        }
  CHECK(checked == 3 * 3 * 4 * 2 * 200);
}

TEST_CASE("random crops and random aspects come from the generator passed in") {
  // 800x600 -> pixel 1024 preserve: resize 1365x1024, target 1344x1024, left in 0..21.
  const json d2 = {{"resolution", 1024},
                   {"resolution_type", "pixel"},
                   {"crop", true},
                   {"crop_style", "random"},
                   {"crop_aspect", "preserve"}};
  AspectBucketer c(read_bucket_settings(d2, json::object(), "sdxl", "t"));
  AspectBucketer c2(read_bucket_settings(d2, json::object(), "sdxl", "t"));
  std::mt19937_64 r4(9), r4_again(9), r5_other(10);
  std::set<int> seen;
  bool other_differs = false;
  for (int i = 0; i < 2000; ++i) {
    const SampleGeometry g = c.prepare(800, 600, r4);
    CHECK(c2.prepare(800, 600, r4_again).crop_left == g.crop_left);  // same seed, same crops
    other_differs = other_differs || c2.prepare(800, 600, r5_other).crop_left != g.crop_left;
    REQUIRE(g.resize_width == 1365);
    REQUIRE(g.target_width == 1344);
    CHECK(g.crop_top == 0);
    seen.insert(g.crop_left);
  }
  CHECK(seen.size() == 22);  // every left in 0..21 appears
  CHECK(*seen.begin() == 0);
  CHECK(*seen.rbegin() == 21);
  CHECK(other_differs);

  // Weighted random aspects follow their weights.
  const json d3 = {{"resolution", 1.0},
                   {"resolution_type", "area"},
                   {"crop", true},
                   {"crop_style", "center"},
                   {"crop_aspect", "random"},
                   {"crop_aspect_buckets", {{{"aspect", 1.0}, {"weight", 0.75}}, {{"aspect", 2.0}, {"weight", 0.25}}}}};
  AspectBucketer w(read_bucket_settings(d3, json::object(), "sdxl", "t"));
  std::mt19937_64 r5(3);
  std::map<std::string, int> counts;
  for (int i = 0; i < 8000; ++i) ++counts[w.prepare(1500, 1000, r5).bucket];
  CHECK(counts.size() == 2);
  CHECK(counts["1.0"] > 5800);
  CHECK(counts["1.0"] < 6200);

  // max_upscale_threshold 0: an aspect whose target would upscale the 1024x1024 original is not drawn.
  const json d4 = {{"resolution", 1024},        {"resolution_type", "pixel"}, {"crop", true},
                   {"crop_style", "center"},    {"crop_aspect", "random"},    {"crop_aspect_buckets", {0.5, 1.0, 1.5}},
                   {"max_upscale_threshold", 0}};
  AspectBucketer t(read_bucket_settings(d4, json::object(), "sdxl", "t"));
  std::mt19937_64 r6(4);
  std::set<std::string> drawn;
  for (int i = 0; i < 200; ++i) drawn.insert(t.prepare(1024, 1024, r6).bucket);
  CHECK(drawn == std::set<std::string>{"0.5", "1.0"});
}

TEST_CASE("SDXL time ids are original (H, W), crop (top, left), target (H, W)") {
  // 1920x1080 at pixel 1024, centre crop preserve: reference row resize 1820x1024, target 1792x1024, crop (0, 14).
  const json d = {{"resolution", 1024},
                  {"resolution_type", "pixel"},
                  {"crop", true},
                  {"crop_style", "center"},
                  {"crop_aspect", "preserve"}};
  AspectBucketer b(read_bucket_settings(d, json::object(), "sdxl", "t"));
  std::mt19937_64 rng(0);
  const auto ids = sdxl_time_ids(b.prepare(1920, 1080, rng));
  CHECK(ids == std::array<int64_t, 6>{1024, 1820, 0, 14, 1024, 1792});  // the intermediary size, not 1080x1920
}

TEST_CASE("bad settings are named") {
  const auto message = [](const json& d, const json& args = json::object(), const std::string& family = "sdxl") {
    try {
      read_bucket_settings(d, args, family, "multidatabackend.json dataset 'pics'");
    } catch (const repa::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const json base = {{"resolution", 1024}, {"resolution_type", "pixel"}};
  const auto with = [&](const char* key, const json& value) {
    json d = base;
    d[key] = value;
    return d;
  };
  CHECK(message(with("crop_style", "face")).find("crop_style") != std::string::npos);
  CHECK(message(with("crop_style", "face")).find("face detector") != std::string::npos);
  CHECK(message(with("crop_style", "middle")).find("expected center, corner or random") != std::string::npos);
  CHECK(message(with("crop_aspect", "wide")).find("crop_aspect") != std::string::npos);
  CHECK(message(with("resolution_type", "megapixel")).find("resolution_type") != std::string::npos);
  CHECK(message(with("resolution", 1024.5)).find("integer number of pixels") != std::string::npos);
  CHECK(message(with("resolution", -1)).find("must be positive") != std::string::npos);
  CHECK(message(with("resolution", "big")).find("expected a number") != std::string::npos);
  CHECK(message(with("crop", "yes")).find("crop") != std::string::npos);
  CHECK(message(with("minimum_image_size", -3)).find("minimum_image_size") != std::string::npos);
  CHECK(message({{"resolution", 1.0}, {"resolution_type", "area"}, {"minimum_image_size", 768}}).find("megapixels") !=
        std::string::npos);
  CHECK(message({{"resolution", 1024.5}, {"resolution_type", "pixel_area"}}).find("pixel_area") != std::string::npos);
  CHECK(message({{"resolution_type", "pixel"}}).find("resolution is missing") != std::string::npos);
  CHECK(message(with("maximum_image_size", 2048)).find("needs target_downsample_size") != std::string::npos);
  json limits = with("maximum_image_size", 256);
  limits["target_downsample_size"] = 256;
  CHECK(message(limits).find("under 512") != std::string::npos);
  CHECK(message({{"resolution", 1.0},
                 {"resolution_type", "area"},
                 {"maximum_image_size", 2048},
                 {"target_downsample_size", 1.5}})
            .find("over 5") != std::string::npos);
  json closest = with("crop", true);
  closest["crop_aspect"] = "closest";
  CHECK(message(closest).find("needs crop_aspect_buckets") != std::string::npos);
  closest["crop_aspect_buckets"] = json::array({1.0, {{"aspect", 1.5}, {"weight", 0.5}}});
  CHECK(message(closest).find("crop_aspect_buckets[1]") != std::string::npos);
  closest["crop_aspect_buckets"] = json::array({1.0, -2.0});
  CHECK(message(closest).find("crop_aspect_buckets[1]") != std::string::npos);
  json weighted = closest;
  weighted["crop_aspect"] = "random";
  weighted["crop_aspect_buckets"] = {{{"aspect", 1.0}, {"weight", 0.5}}, {{"aspect", 2.0}, {"weight", 0.4}}};
  CHECK(message(weighted).find("add up to 1") != std::string::npos);
  weighted["crop_aspect_buckets"] = {{{"aspect", 1.0}}};
  CHECK(message(weighted).find("has no weight") != std::string::npos);
  CHECK(message(base, {{"aspect_bucket_rounding", 0}}).find("aspect_bucket_rounding") != std::string::npos);
  CHECK(message(base, {{"--aspect_bucket_alignment", 0}}).find("aspect_bucket_alignment") != std::string::npos);
  CHECK(message(base).find("dataset 'pics'") == std::string::npos);  // a good entry: no error

  // The family's alignment wins over the args', with a warning; unknown families keep the args' value.
  std::vector<std::string> warnings;
  CHECK(read_bucket_settings(base, {{"aspect_bucket_alignment", 32}}, "sdxl", "d", &warnings).alignment == 64);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("overridden to 64 for sdxl") != std::string::npos);
  CHECK(read_bucket_settings(base, {{"aspect_bucket_alignment", 32}}, "demo", "d").alignment == 32);
  CHECK(read_bucket_settings(base, json::object(), "demo", "d").alignment == 64);
  CHECK(read_bucket_settings(base, json::object(), "flux2", "d").alignment == 16);
  // Dataset values win over the args' fallbacks; pixel_area converts the sizes to megapixels.
  const BucketSettings pa = read_bucket_settings({{"resolution", 1024},
                                                  {"resolution_type", "pixel_area"},
                                                  {"minimum_image_size", 512},
                                                  {"maximum_image_size", 2048},
                                                  {"target_downsample_size", 1536}},
                                                 {{"resolution", 512}, {"resolution_type", "pixel"}}, "sdxl", "d");
  CHECK(pa.resolution_type == ResolutionType::Area);
  CHECK(pa.resolution == doctest::Approx(1.048576).epsilon(1e-12));
  CHECK(pa.minimum_image_size == doctest::Approx(0.262144).epsilon(1e-12));
  CHECK(pa.maximum_image_size == doctest::Approx(4.194304).epsilon(1e-12));
  CHECK(pa.target_downsample_size == doctest::Approx(2.359296).epsilon(1e-12));
  const BucketSettings fallback =
      read_bucket_settings(json::object(), {{"--resolution", 768}, {"--crop", true}}, "sd1x", "d");
  CHECK(fallback.resolution == 768);
  CHECK(fallback.crop);
  CHECK(fallback.crop_style == CropStyle::Random);
  CHECK(fallback.crop_aspect == CropAspect::Square);
  std::mt19937_64 rng(0);
  AspectBucketer b(fallback);
  CHECK_THROWS_WITH_AS(b.prepare(0, 10, rng), doctest::Contains("invalid image size 0x10"), repa::InputError);
}

TEST_CASE("batches come from one bucket each; an epoch is a pure function of seed and epoch") {
  // 7 images in "1.0", 5 in "1.5", 2 in "0.67" (fewer than the batch: pruned), 3 in "2.0".
  std::vector<std::string> keys;
  for (int i = 0; i < 7; ++i) keys.push_back("1.0");
  for (int i = 0; i < 5; ++i) keys.push_back("1.5");
  for (int i = 0; i < 2; ++i) keys.push_back("0.67");
  for (int i = 0; i < 3; ++i) keys.push_back("2.0");
  std::rotate(keys.begin(), keys.begin() + 3, keys.end());  // buckets first seen in the order 1.0, 1.5, 0.67, 2.0
  const BucketBatchSampler sampler(keys, 3, 42);
  REQUIRE(sampler.pruned().size() == 1);
  CHECK(sampler.pruned()[0] == std::make_pair(std::string("0.67"), int64_t(2)));
  const auto e0 = sampler.epoch(0);
  CHECK(sampler.batches_per_epoch() == 3 + 2 + 1);
  REQUIRE(e0.size() == 6);
  // Turns: 1.0, 1.5, 2.0, 1.0, 1.5, 1.0.
  const std::vector<std::string> order = {"1.0", "1.5", "2.0", "1.0", "1.5", "1.0"};
  std::map<std::string, std::multiset<int64_t>> used;
  for (std::size_t i = 0; i < e0.size(); ++i) {
    CHECK(e0[i].bucket == order[i]);
    REQUIRE(e0[i].images.size() == 3);
    std::set<int64_t> distinct(e0[i].images.begin(), e0[i].images.end());
    CHECK(distinct.size() == 3);  // a filled batch repeats no image
    for (int64_t img : e0[i].images) {
      CHECK(keys[img] == e0[i].bucket);
      used[e0[i].bucket].insert(img);
    }
  }
  // Every image of a kept bucket is seen; the fill adds 2 repeats in "1.0" (7 -> 9) and 1 in "1.5" (5 -> 6).
  CHECK(used["1.0"].size() == 9);
  CHECK(std::set<int64_t>(used["1.0"].begin(), used["1.0"].end()).size() == 7);
  CHECK(used["1.5"].size() == 6);
  CHECK(std::set<int64_t>(used["1.5"].begin(), used["1.5"].end()).size() == 5);
  CHECK(used["2.0"].size() == 3);
  CHECK(used.count("0.67") == 0);
  // Resume: the same epoch rebuilt is identical; another epoch or seed reorders.
  const auto again = sampler.epoch(0);
  bool same = true;
  for (std::size_t i = 0; i < e0.size(); ++i) same = same && again[i].images == e0[i].images;
  CHECK(same);
  const auto e1 = sampler.epoch(1);
  const auto other_seed = BucketBatchSampler(keys, 3, 43).epoch(0);
  bool e1_same = true, seed_same = true;
  for (std::size_t i = 0; i < e0.size(); ++i) {
    e1_same = e1_same && e1[i].images == e0[i].images;
    seed_same = seed_same && other_seed[i].images == e0[i].images;
  }
  CHECK_FALSE(e1_same);
  CHECK_FALSE(seed_same);

  CHECK_THROWS_WITH_AS(BucketBatchSampler(std::vector<std::string>{"1.0", "1.5"}, 2, 0),
                       doctest::Contains("no bucket holds a full batch of 2 images"), repa::InputError);
  CHECK_THROWS_AS(BucketBatchSampler(keys, 0, 0), repa::InputError);
}

namespace {
struct ChoiceRow {
  const char* config;
  int w, h;
  const char* choices;  // repr of each aspect, comma-separated
};
// Printed by SimpleTuner's TrainingSample._trim_aspect_bucket_list (buckets 0.5, 0.75, 1.0, 1.25, 1.5, 2.0;
// crop_aspect random), one map per configuration, sizes in this order.
const ChoiceRow kChoices[] = {
    {"pixel1024_t0.2", 1024, 1024, "0.5,0.75,1.0"},
    {"pixel1024_t0.2", 1920, 1080, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 1080, 1920, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 800, 600, ""},
    {"pixel1024_t0.2", 600, 800, ""},
    {"pixel1024_t0.2", 3000, 2000, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 512, 768, ""},
    {"pixel1024_t0.2", 333, 517, ""},
    {"pixel1024_t0.2", 4000, 1000, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 1000, 4000, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 1023, 1025, "1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 700, 700, ""},
    {"pixel1024_t0.2", 2560, 1440, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 1200, 900, "0.5,0.75,1.0,1.25"},
    {"pixel1024_t0.2", 640, 480, ""},
    {"pixel1024_t0.2", 1500, 1001, "0.5,0.75,1.0,1.25,1.5"},
    {"pixel1024_t0.2", 257, 1999, ""},
    {"pixel1024_t0.2", 2048, 1536, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"pixel1024_t0.2", 96, 64, ""},
    {"pixel1024_t0.2", 1366, 768, ""},
    {"area1_t0", 1024, 1024, "1.0"},
    {"area1_t0", 1920, 1080, "1.0,1.25,1.5,2.0"},
    {"area1_t0", 1080, 1920, "0.5,0.75,1.0"},
    {"area1_t0", 800, 600, ""},
    {"area1_t0", 600, 800, ""},
    {"area1_t0", 3000, 2000, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"area1_t0", 512, 768, ""},
    {"area1_t0", 333, 517, ""},
    {"area1_t0", 4000, 1000, "1.25,1.5,2.0"},
    {"area1_t0", 1000, 4000, "0.5,0.75"},
    {"area1_t0", 1023, 1025, ""},
    {"area1_t0", 700, 700, ""},
    {"area1_t0", 2560, 1440, "0.75,1.0,1.25,1.5,2.0"},
    {"area1_t0", 1200, 900, "1.25"},
    {"area1_t0", 640, 480, ""},
    {"area1_t0", 1500, 1001, "1.25,1.5,2.0"},
    {"area1_t0", 257, 1999, ""},
    {"area1_t0", 2048, 1536, "0.5,0.75,1.0,1.25,1.5,2.0"},
    {"area1_t0", 96, 64, ""},
    {"area1_t0", 1366, 768, ""},
};
}  // namespace

TEST_CASE("random aspects are drawn from the buckets SimpleTuner's max_upscale_threshold keeps") {
  const json buckets = {0.5, 0.75, 1.0, 1.25, 1.5, 2.0};
  std::map<std::string, AspectBucketer> bucketers;
  bucketers.emplace("pixel1024_t0.2", AspectBucketer(read_bucket_settings({{"resolution", 1024},
                                                                           {"resolution_type", "pixel"},
                                                                           {"crop", true},
                                                                           {"crop_aspect", "random"},
                                                                           {"crop_aspect_buckets", buckets},
                                                                           {"max_upscale_threshold", 0.2}},
                                                                          json::object(), "sdxl", "t")));
  bucketers.emplace("area1_t0", AspectBucketer(read_bucket_settings({{"resolution", 1.0},
                                                                     {"resolution_type", "area"},
                                                                     {"crop", true},
                                                                     {"crop_aspect", "random"},
                                                                     {"crop_aspect_buckets", buckets},
                                                                     {"max_upscale_threshold", 0}},
                                                                    json::object(), "sdxl", "t")));
  int compared = 0;
  for (const auto& r : kChoices) {
    std::string text;
    for (double a : bucketers.at(r.config).random_aspect_choices(r.w, r.h))
      text += (text.empty() ? "" : ",") + python_float_str(a, 2);
    INFO(r.config << " " << r.w << "x" << r.h);
    CHECK(text == r.choices);
    ++compared;
  }
  CHECK(compared == 40);
}
