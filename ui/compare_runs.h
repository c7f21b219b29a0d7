// Two run folders' curves on one chart: pick the folders (or their metrics.jsonl) and a metric; both runs
// are drawn against the step, each with its own colour and its folder name in the legend. What TensorBoard
// is usually kept for, without leaving the studio.
#pragma once
#include <QDialog>
#include <array>

#include "ui/metrics_file.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;

namespace repa::ui {

class CompareRunsDialog : public QDialog {
  Q_OBJECT

 public:
  explicit CompareRunsDialog(QWidget* parent = nullptr);

  // Loads run `index` (0 or 1) from a run folder or a metrics.jsonl; false (and the reason shown) if unreadable.
  bool set_run(int index, const QString& path);
  // Shows `metric` ("loss", "crepa_loss", ...) for both runs; false if neither run has it.
  bool set_metric(const QString& metric);
  QStringList metrics() const;  // the metrics either run reports
  QCustomPlot* plot() const { return plot_; }
  int point_count(int index) const;
  QString message() const;

 private:
  void rebuild_metric_list();
  void redraw();

  std::array<MetricsFile, 2> runs_;
  std::array<QString, 2> names_;
  std::array<QLineEdit*, 2> paths_{};
  QComboBox* metric_ = nullptr;
  QCustomPlot* plot_ = nullptr;
  QLabel* message_ = nullptr;
};

}  // namespace repa::ui
