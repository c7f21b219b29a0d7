// Level-of-detail for long curves: a pyramid of per-bucket minimum and maximum over a growing series, so a
// view of a million points is drawn from a few thousand without losing a single spike.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace repa::ui {

class MinMaxPyramid {
 public:
  void clear() { levels_.clear(); }
  // values[index] was just appended (indices arrive in order, from 0).
  void append(const std::vector<double>& values, size_t index);
  void rebuild(const std::vector<double>& values);

  // Indices of the points to draw for the raw range [first, last), at most about `max_points`, in order:
  // every point when they fit, else the minimum and maximum of each bucket of the coarsest level that fits.
  void visible_indices(const std::vector<double>& values, size_t first, size_t last, size_t max_points,
                       std::vector<uint32_t>& out) const;

  // Buckets start at 2^kFirstLevel points: below that the raw points are few enough to draw directly.
  static constexpr int kFirstLevel = 3;
  static constexpr int kLevels = 24;  // up to 2^26 points per bucket

 private:
  struct Bucket {
    uint32_t argmin, argmax;
  };
  std::vector<std::vector<Bucket>> levels_;
};

}  // namespace repa::ui
