// The charts page: every training scalar in its own chart, fed by metrics events, redrawn at display rate.
#pragma once
#include <QHash>
#include <QWidget>
#include <nlohmann/json.hpp>
#include <vector>

#include "ui/metric_chart.h"

class QCheckBox;
class QComboBox;
class QGridLayout;
class QLabel;
class QScrollArea;
class QSlider;
class QTimer;

namespace repa::ui {

// The charts the studio shows, in display order, with the metrics event fields each one plots.
std::vector<ChartSpec> default_chart_specs();

class ChartBoard : public QWidget {
  Q_OBJECT

 public:
  explicit ChartBoard(QWidget* parent = nullptr);

  // Takes one metrics event ({"type":"metrics","step":..,"wall_time":..,"loss":..}); fields without a
  // chart are ignored. Drawing happens on the next display tick, not here.
  void add_metrics(const nlohmann::json& event);
  // Reference lines and labels that come from the run's config (similarity thresholds).
  void set_run_config(const nlohmann::json& config);
  void clear();

  // Redraws the charts that changed; called by the display timer (public so tests and benchmarks can
  // drive it without waiting). Returns how many charts were redrawn.
  int refresh_now();

  MetricChart* chart(const QString& id) const;
  const std::vector<MetricChart*>& charts() const { return charts_; }
  qint64 metrics_received() const { return metrics_received_; }

  // Columns of the chart grid for the current width: 3 on a wide window, 2 on a laptop, 1 when narrow,
  // so charts never need a horizontal scroll bar.
  int columns() const { return columns_; }
  static int columns_for_width(int width);
  QScrollArea* scroll_area() const { return scroll_; }

  void set_smoothing(double weight);
  void set_show_raw(bool on);
  void set_log_scale(bool on);
  void set_x_mode(XAxisMode mode);
  void reset_views();
  // One PNG and one CSV per chart with data, named by chart id; returns the files written.
  QStringList export_all(const QString& directory);

 protected:
  void resizeEvent(QResizeEvent* event) override;

 private:
  void relayout();

  std::vector<MetricChart*> charts_;
  QHash<QString, std::pair<MetricChart*, int>> series_by_key_;
  QGridLayout* grid_ = nullptr;
  QSlider* smoothing_slider_ = nullptr;
  QLabel* smoothing_value_ = nullptr;
  QCheckBox* log_scale_ = nullptr;
  QCheckBox* show_raw_ = nullptr;
  QScrollArea* scroll_ = nullptr;
  int columns_ = 3;
  QComboBox* x_mode_ = nullptr;
  QTimer* display_timer_ = nullptr;
  qint64 metrics_received_ = 0;
  std::vector<bool> shown_;
};

}  // namespace repa::ui
