#include "ui/compare_runs.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

namespace repa::ui {
namespace {

const std::array<QColor, 2> kColors = {QColor(0x1565c0), QColor(0xc62828)};

QString run_name(const QString& path) {
  const QFileInfo info(path);
  return info.isDir() ? info.fileName() : info.dir().dirName();  // metrics.jsonl: its folder's name
}

}  // namespace

CompareRunsDialog::CompareRunsDialog(QWidget* parent) : QDialog(parent) {
  setObjectName(QStringLiteral("compareRunsDialog"));
  setWindowTitle(tr("Compare Runs"));
  auto* grid = new QGridLayout;
  for (int i = 0; i < 2; ++i) {
    paths_[i] = new QLineEdit(this);
    paths_[i]->setObjectName(QStringLiteral("comparePath%1").arg(i));
    paths_[i]->setPlaceholderText(tr("run folder or metrics.jsonl"));
    auto* browse = new QPushButton(tr("Browse…"), this);
    auto* label = new QLabel(i == 0 ? tr("Run A:") : tr("Run B:"), this);
    label->setStyleSheet(QStringLiteral("QLabel { color: %1; font-weight: bold; }").arg(kColors[i].name()));
    grid->addWidget(label, i, 0);
    grid->addWidget(paths_[i], i, 1);
    grid->addWidget(browse, i, 2);
    connect(paths_[i], &QLineEdit::editingFinished, this, [this, i] {
      if (!paths_[i]->text().isEmpty()) set_run(i, paths_[i]->text());
    });
    connect(browse, &QPushButton::clicked, this, [this, i] {
      const QString dir = QFileDialog::getExistingDirectory(this, tr("A run folder (holding metrics.jsonl)"));
      if (!dir.isEmpty()) set_run(i, dir);
    });
  }
  metric_ = new QComboBox(this);
  metric_->setObjectName(QStringLiteral("compareMetric"));
  grid->addWidget(new QLabel(tr("Metric:"), this), 2, 0);
  grid->addWidget(metric_, 2, 1);
  connect(metric_, &QComboBox::currentTextChanged, this, [this] { redraw(); });

  plot_ = new QCustomPlot(this);
  plot_->setObjectName(QStringLiteral("comparePlot"));
  plot_->setMinimumSize(640, 360);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->xAxis->setLabel(tr("step"));
  plot_->legend->setVisible(true);
  for (int i = 0; i < 2; ++i) plot_->addGraph()->setPen(QPen(kColors[i], 1.5));
  message_ = new QLabel(this);
  message_->setObjectName(QStringLiteral("compareMessage"));
  message_->setWordWrap(true);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(grid);
  layout->addWidget(plot_, 1);
  layout->addWidget(message_);
  resize(900, 600);
}

bool CompareRunsDialog::set_run(int index, const QString& path) {
  if (index < 0 || index > 1) return false;
  paths_[index]->setText(path);
  runs_[index] = read_metrics_file(path);
  names_[index] = run_name(path);
  rebuild_metric_list();
  if (!runs_[index].error.isEmpty()) {
    message_->setText(runs_[index].error);
    return false;
  }
  if (runs_[index].rows.empty()) {
    message_->setText(tr("%1 holds no metrics yet").arg(path));
    return false;
  }
  return true;
}

QStringList CompareRunsDialog::metrics() const {
  QStringList names;
  for (const MetricsFile& run : runs_)
    for (const std::string& name : metric_names(run))
      if (!names.contains(QString::fromStdString(name))) names << QString::fromStdString(name);
  return names;
}

void CompareRunsDialog::rebuild_metric_list() {
  const QString current = metric_->currentText();
  const QSignalBlocker block(metric_);
  metric_->clear();
  metric_->addItems(metrics());
  // Keep the chosen metric; else the total loss, the one every run has.
  int keep = metric_->findText(current.isEmpty() ? QStringLiteral("loss") : current);
  if (keep < 0) keep = metric_->findText(QStringLiteral("loss"));
  metric_->setCurrentIndex(std::max(0, keep));
  redraw();
}

bool CompareRunsDialog::set_metric(const QString& metric) {
  const int index = metric_->findText(metric);
  if (index < 0) return false;
  metric_->setCurrentIndex(index);
  redraw();
  return true;
}

int CompareRunsDialog::point_count(int index) const {
  return plot_->graph(index)->dataCount();
}

QString CompareRunsDialog::message() const {
  return message_->text();
}

void CompareRunsDialog::redraw() {
  const std::string metric = metric_->currentText().toStdString();
  QStringList missing;
  for (int i = 0; i < 2; ++i) {
    QVector<double> steps, values;
    for (const auto& row : runs_[i].rows) {
      const auto it = row.find(metric);
      if (it == row.end() || !it->is_number()) continue;
      steps << row["step"].get<double>();
      values << it->get<double>();
    }
    // A resumed run rewrites steps after its checkpoint: the later line of a step wins, as in the charts.
    QCPGraph* graph = plot_->graph(i);
    graph->data()->clear();
    for (int k = 0; k < steps.size(); ++k) {
      graph->data()->remove(steps[k]);
      graph->addData(steps[k], values[k]);
    }
    graph->setName(names_[i].isEmpty() ? (i == 0 ? tr("run A") : tr("run B")) : names_[i]);
    if (!runs_[i].rows.empty() && steps.isEmpty()) missing << names_[i];
  }
  plot_->yAxis->setLabel(metric_->currentText());
  plot_->rescaleAxes();
  plot_->replot();
  if (!missing.isEmpty())
    message_->setText(tr("%1 does not report %2").arg(missing.join(QStringLiteral(", ")), metric_->currentText()));
  else if (runs_[0].error.isEmpty() && runs_[1].error.isEmpty())
    message_->clear();
}

}  // namespace repa::ui
