#include "ui/min_max_pyramid.h"

#include <algorithm>
#include <cmath>

namespace repa::ui {

void MinMaxPyramid::append(const std::vector<double>& values, size_t index) {
  if (levels_.empty()) levels_.resize(kLevels);
  const double v = values[index];
  const auto i = static_cast<uint32_t>(index);
  for (int l = 0; l < kLevels; ++l) {
    std::vector<Bucket>& level = levels_[static_cast<size_t>(l)];
    const size_t bucket = index >> (l + kFirstLevel);
    if (bucket == level.size()) {
      level.push_back({i, i});
      continue;
    }
    Bucket& b = level[bucket];
    // NaN never wins a comparison: a bucket's extremes are its finite values when it has any.
    if (v < values[b.argmin] || std::isnan(values[b.argmin])) b.argmin = i;
    if (v > values[b.argmax] || std::isnan(values[b.argmax])) b.argmax = i;
  }
}

void MinMaxPyramid::rebuild(const std::vector<double>& values) {
  levels_.clear();
  for (size_t i = 0; i < values.size(); ++i) append(values, i);
}

void MinMaxPyramid::visible_indices(const std::vector<double>& values, size_t first, size_t last, size_t max_points,
                                    std::vector<uint32_t>& out) const {
  out.clear();
  last = std::min(last, values.size());
  if (first >= last) return;
  const size_t n = last - first;
  if (n <= max_points || levels_.empty()) {
    out.reserve(n);
    for (size_t i = first; i < last; ++i) out.push_back(static_cast<uint32_t>(i));
    return;
  }
  int l = 0;  // the finest level whose buckets (two points each) fit
  while (l + 1 < kLevels && 2 * ((n >> (l + kFirstLevel)) + 1) > max_points) ++l;
  const std::vector<Bucket>& level = levels_[static_cast<size_t>(l)];
  const int shift = l + kFirstLevel;
  const size_t b0 = first >> shift, b1 = std::min(level.size() - 1, (last - 1) >> shift);
  out.reserve(2 * (b1 - b0 + 1));
  for (size_t b = b0; b <= b1; ++b) {
    const Bucket& bucket = level[b];
    const uint32_t lo = std::min(bucket.argmin, bucket.argmax), hi = std::max(bucket.argmin, bucket.argmax);
    out.push_back(lo);
    if (hi != lo) out.push_back(hi);
  }
}

}  // namespace repa::ui
