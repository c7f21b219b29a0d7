// A small chart of the planned alignment weight per step, beside the scheduler fields. The curve comes
// from `repa-train schedule CONFIG --format csv` (the worker's own CoefficientSchedule), run in a
// QProcess so the window neither links LibTorch nor re-implements the schedule.
#pragma once
#include <QWidget>
#include <nlohmann/json.hpp>

class QCustomPlot;
class QCPLayoutGrid;
class QLabel;
class QProcess;
class QTemporaryFile;
class QTimer;

namespace repa::ui {

class SchedulePreview : public QWidget {
  Q_OBJECT

 public:
  explicit SchedulePreview(QWidget* parent = nullptr);
  ~SchedulePreview() override;

  void set_program(const QString& program) { program_ = program; }
  // Asks for a new curve after a short pause (typing in a field restarts the wait).
  void request(const nlohmann::json& config);
  void request_now(const nlohmann::json& config);

  QCustomPlot* plot() const { return plot_; }
  int series_count() const;
  int point_count(int series) const;
  QString status_text() const;

  // "step,crepa_weight,urepa_weight\n0,0,0\n..." → columns by name (the first is x). Empty on no data.
  static std::vector<std::pair<QString, QVector<double>>> parse_csv(const QByteArray& text);

 signals:
  void curve_updated();

 private:
  void run();
  void finished();

  QString program_;
  QCustomPlot* plot_ = nullptr;
  QCPLayoutGrid* legend_row_ = nullptr;  // under the axes: the legend, when both methods are planned
  QLabel* status_ = nullptr;
  QTimer* debounce_ = nullptr;
  QProcess* process_ = nullptr;
  QTemporaryFile* config_file_ = nullptr;
  nlohmann::json pending_;
  bool rerun_ = false;
  qint64 last_steps_ = 0;
};

}  // namespace repa::ui
