#include "ui/schedule_preview.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QProcess>
#include <QTemporaryFile>
#include <QTimer>
#include <QVBoxLayout>

#include "ui/metric_chart.h"
#include "ui/run_controller.h"

namespace repa::ui {

SchedulePreview::SchedulePreview(QWidget* parent) : QWidget(parent), program_(locate_repa_train()) {
  setObjectName(QStringLiteral("schedulePreview"));
  plot_ = new QCustomPlot(this);
  plot_->setObjectName(QStringLiteral("schedulePreviewPlot"));
  plot_->setMinimumHeight(150);
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("planned weight"));
  plot_->legend->setFont(QFont(font().family(), 8));
  plot_->legend->setBorderPen(Qt::NoPen);
  plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  // Under the axes, not over the curve; shown only when REPA and U-REPA are both planned.
  plot_->axisRect()->insetLayout()->take(plot_->legend);
  legend_row_ = new_chart_footer();
  plot_->plotLayout()->addElement(1, 0, legend_row_);
  plot_->plotLayout()->setRowStretchFactor(1, 0.001);
  plot_->legend->setVisible(false);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  status_ = new QLabel(this);
  status_->setObjectName(QStringLiteral("schedulePreviewStatus"));
  status_->setWordWrap(true);
  status_->setStyleSheet(QStringLiteral("color: #666;"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 4, 0, 4);
  auto* title = new QLabel(tr("<b>Planned alignment weight</b> (coefficient schedule, before any similarity cut-off)"), this);
  title->setWordWrap(true);
  layout->addWidget(title);
  layout->addWidget(plot_);
  layout->addWidget(status_);
  debounce_ = new QTimer(this);
  debounce_->setSingleShot(true);
  debounce_->setInterval(350);
  connect(debounce_, &QTimer::timeout, this, &SchedulePreview::run);
}

SchedulePreview::~SchedulePreview() {
  if (process_ && process_->state() != QProcess::NotRunning) {
    process_->kill();
    process_->waitForFinished(1000);
  }
}

void SchedulePreview::request(const nlohmann::json& config) {
  pending_ = config;
  debounce_->start();
}

void SchedulePreview::request_now(const nlohmann::json& config) {
  pending_ = config;
  debounce_->stop();
  run();
}

void SchedulePreview::run() {
  if (process_ && process_->state() != QProcess::NotRunning) {
    rerun_ = true;  // the newest settings win once the running one ends
    return;
  }
  delete config_file_;
  config_file_ = new QTemporaryFile(QDir::tempPath() + QStringLiteral("/repa-schedule-XXXXXX.json"), this);
  if (!config_file_->open()) {
    status_->setText(tr("Cannot write a temporary config: %1").arg(config_file_->errorString()));
    return;
  }
  config_file_->write(QByteArray::fromStdString(pending_.dump()));
  config_file_->flush();
  if (!process_) {
    process_ = new QProcess(this);
    connect(process_, &QProcess::finished, this, &SchedulePreview::finished);
    connect(process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
      if (error == QProcess::FailedToStart)
        status_->setText(tr("Cannot run %1: %2").arg(program_, process_->errorString()));
    });
  }
  status_->setText(tr("computing…"));
  // About 200 points over the planned run (10,000 steps when the run has no step budget yet).
  const auto max_steps = pending_.find("max_train_steps");
  last_steps_ = max_steps != pending_.end() && max_steps->is_number() && max_steps->get<double>() > 0
                    ? static_cast<qint64>(max_steps->get<double>())
                    : 0;
  const qint64 span = last_steps_ > 0 ? last_steps_ : 10000;
  const QString steps = QStringLiteral("0:%1:%2").arg(span).arg(std::max<qint64>(1, span / 200));
  process_->start(program_, {QStringLiteral("schedule"), config_file_->fileName(), QStringLiteral("--format"),
                             QStringLiteral("csv"), QStringLiteral("--steps"), steps});
}

std::vector<std::pair<QString, QVector<double>>> SchedulePreview::parse_csv(const QByteArray& text) {
  std::vector<std::pair<QString, QVector<double>>> columns;
  const QList<QByteArray> lines = text.split('\n');
  bool header_seen = false;
  for (const QByteArray& raw : lines) {
    const QByteArray line = raw.trimmed();
    if (line.isEmpty() || line.startsWith('#')) continue;
    const QList<QByteArray> cells = line.split(',');
    if (!header_seen) {
      for (const QByteArray& cell : cells) columns.emplace_back(QString::fromUtf8(cell.trimmed()), QVector<double>());
      header_seen = true;
      continue;
    }
    if (cells.size() != static_cast<qsizetype>(columns.size())) continue;
    for (size_t i = 0; i < columns.size(); ++i) {
      bool ok = false;
      const double v = cells[static_cast<qsizetype>(i)].trimmed().toDouble(&ok);
      columns[i].second.append(ok ? v : qQNaN());
    }
  }
  if (columns.size() < 2 || columns[0].second.isEmpty()) return {};
  return columns;
}

void SchedulePreview::finished() {
  const QByteArray out = process_->readAllStandardOutput();
  const QString err = QString::fromUtf8(process_->readAllStandardError()).trimmed();
  if (rerun_) {
    rerun_ = false;
    run();
    return;
  }
  if (process_->exitStatus() != QProcess::NormalExit || process_->exitCode() != 0) {
    status_->setText(err.isEmpty() ? tr("The schedule could not be computed (exit code %1)").arg(process_->exitCode())
                                   : err.section(QLatin1Char('\n'), 0, 3));
    return;
  }
  const auto columns = parse_csv(out);
  plot_->clearGraphs();
  if (columns.empty()) {
    status_->setText(tr("No schedule to show (REPA and U-REPA are off)"));
    plot_->replot();
    emit curve_updated();
    return;
  }
  const QColor colors[] = {QColor(255, 127, 14), QColor(148, 103, 189), QColor(44, 160, 44)};
  double lo = 0, hi = 0;
  for (size_t i = 1; i < columns.size(); ++i) {
    QCPGraph* graph = plot_->addGraph();
    graph->setName(columns[i].first);
    graph->setPen(QPen(colors[(i - 1) % 3], 2));
    graph->setData(columns[0].second, columns[i].second, /*alreadySorted=*/true);
    for (double v : columns[i].second)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  }
  const bool legend = columns.size() > 2;
  if (legend && !legend_row_->hasElement(0, 0)) legend_row_->addElement(0, 0, plot_->legend);
  if (!legend && legend_row_->hasElement(0, 0)) legend_row_->take(plot_->legend);
  legend_row_->simplify();
  plot_->legend->setVisible(legend);
  plot_->xAxis->setRange(columns[0].second.front(), std::max(columns[0].second.back(), columns[0].second.front() + 1));
  plot_->yAxis->setRange(lo, hi > lo ? hi * 1.08 : lo + 1);
  plot_->replot();
  status_->setText(last_steps_ > 0 ? tr("Steps 0 to %1, as the worker will schedule them").arg(last_steps_)
                                   : tr("Max Training Steps is not set: showing the first 10,000 steps"));
  emit curve_updated();
}

int SchedulePreview::series_count() const { return plot_->graphCount(); }

int SchedulePreview::point_count(int series) const {
  return series < plot_->graphCount() ? plot_->graph(series)->dataCount() : 0;
}

QString SchedulePreview::status_text() const { return status_->text(); }

}  // namespace repa::ui
