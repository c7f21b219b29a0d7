// One live chart of training scalars: each series drawn raw (faint) with an EMA-smoothed line on top.
#pragma once
#include <QColor>
#include <QString>
#include <QWidget>
#include <vector>

#include "ui/min_max_pyramid.h"

class QCustomPlot;
class QCPGraph;
class QCPItemStraightLine;
class QCPItemText;
class QCPLayoutGrid;
class QCPTextElement;

namespace repa::ui {

// A row for legends and notes under a plot's axes that never limits the width of the axes (an empty
// QCPLayoutGrid would cap it at 0). The plot layout that receives it owns it.
QCPLayoutGrid* new_chart_footer();

// How the x axis is read: by optimizer step or by seconds of training (wall_time).
enum class XAxisMode { Step, WallTime };

struct SeriesSpec {
  QString key;    // metrics event field, e.g. "crepa_loss"
  QString label;  // legend text
  QColor color;
  bool mark_cutoff = false;  // draw a vertical marker where the scheduled weight drops to zero for good
};

struct ChartSpec {
  QString id;     // object name, file names of exports
  QString title;
  QString y_label;
  std::vector<SeriesSpec> series;
  bool log_capable = false;      // follows the log-scale toggle (quantities that stay positive)
  bool threshold_lines = false;  // horizontal reference lines set by set_threshold()
};

// One recorded point (what point() returns and the CSV export writes).
struct MetricPoint {
  double step = 0;
  double wall_time = 0;
  double value = 0;
};

class MetricChart : public QWidget {
  Q_OBJECT

 public:
  explicit MetricChart(ChartSpec spec, QWidget* parent = nullptr);

  const ChartSpec& spec() const { return spec_; }
  QCustomPlot* plot() const { return plot_; }

  // Appends one value of series `index`. Points arrive in step order; a step at or before the last one
  // (a run resumed from an earlier checkpoint) drops the points after it so the curve continues.
  void append(int index, double step, double wall_time, double value);
  // Redraws if anything changed since the last call; returns whether it did. Cheap when nothing changed.
  bool refresh();

  int series_count() const { return static_cast<int>(spec_.series.size()); }
  int point_count(int index) const { return static_cast<int>(series_[static_cast<size_t>(index)].step.size()); }
  bool has_data() const;
  MetricPoint point(int index, int i) const;
  double smoothed(int index, int i) const { return series_[static_cast<size_t>(index)].smooth[static_cast<size_t>(i)]; }
  // Points handed to QCustomPlot for the current view (raw graph of a series): at most a few thousand.
  int drawn_count(int index) const;

  // 0 = raw, 0.999 = very smooth (TensorBoard's convention, debiased EMA).
  void set_smoothing(double weight);
  // Log scale as asked; the axis is logarithmic only while every value is positive (REPA makes the total
  // loss negative): otherwise it stays linear and log_scale_note() says why, under the chart.
  void set_log_scale(bool on);
  bool log_scale() const { return log_scale_; }
  bool log_axis() const;  // what the y axis is now
  QString log_scale_note() const;
  // The faint raw values under the smoothed line: off by default, since on per-step data they draw a
  // band of noise that hides the trend; with smoothing 0 the line is the raw values anyway.
  void set_show_raw(bool on);
  bool raw_drawn(int index) const;
  // The legend sits in the footer under the axes, outside the data.
  bool legend_outside_data() const;
  void set_x_mode(XAxisMode mode);
  XAxisMode x_mode() const { return x_mode_; }
  // A horizontal reference line per series (e.g. the similarity threshold); NaN hides it.
  void set_threshold(int index, double value);
  // Follow the data again after the user zoomed or panned.
  void reset_view();
  bool following() const { return follow_; }
  void clear();

  bool export_png(const QString& path, int width = 1200, int height = 700);
  // Long format: series,step,wall_time,value,smoothed — one row per recorded point.
  bool export_csv(const QString& path) const;

 private:
  // Every recorded point is kept here (columns, for cache-friendly rebuilds); the graphs only get what
  // the current view needs, picked by the min/max pyramids.
  struct Series {
    std::vector<double> step, wall, value, smooth;
    MinMaxPyramid raw_lod, smooth_lod;
    QCPGraph* raw_graph = nullptr;
    QCPGraph* smooth_graph = nullptr;
    double ema = 0;
    double ema_biased = 0;
    double ema_norm = 0;  // 1 - w^n, for the debiased start
    double threshold;
    QCPItemStraightLine* threshold_line = nullptr;
    QCPItemStraightLine* cutoff_line = nullptr;
    QCPItemText* cutoff_text = nullptr;
    bool seen_positive = false;
    double wall_offset = 0;  // keeps wall time increasing when a resumed run restarts its clock
  };

  const std::vector<double>& xs(const Series& s) const { return x_mode_ == XAxisMode::Step ? s.step : s.wall; }
  double smooth_next(Series& s, double value) const;
  // Recomputes smoothed values, bounds and cut-off markers; `All` also the raw pyramid (after truncation),
  // `Smoothing` the smoothed one, `Bounds` neither (x axis switched).
  enum class Rebuild { All, Smoothing, Bounds };
  void rebuild_graphs(Rebuild what);
  void update_view();      // hand the graphs the points of the visible x range
  void include_in_bounds(double x, double y);
  void update_cutoff(int index, double x, double value);
  void place_cutoff(Series& s, double x);
  void apply_follow_ranges();
  void apply_axis_scale();  // log or linear as asked and as the data allow
  void place_footer();      // legend and log-scale note under the axes, each only when it has something to say

  ChartSpec spec_;
  QCustomPlot* plot_ = nullptr;
  std::vector<Series> series_;
  double smoothing_ = 0.6;
  bool log_scale_ = false;
  bool log_axis_ = false;
  bool show_raw_ = false;
  QCPLayoutGrid* footer_ = nullptr;
  QCPTextElement* note_ = nullptr;
  XAxisMode x_mode_ = XAxisMode::Step;
  bool follow_ = true;
  bool dirty_ = true;
  bool updating_view_ = false;
  std::vector<uint32_t> scratch_;
  bool have_bounds_ = false;
  double x_min_ = 0, x_max_ = 0, y_min_ = 0, y_max_ = 0, y_min_positive_ = 0;
};

}  // namespace repa::ui
