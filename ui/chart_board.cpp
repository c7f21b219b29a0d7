#include "ui/chart_board.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QResizeEvent>
#include <QScrollArea>
#include <QScrollBar>
#include <QSlider>
#include <QTimer>
#include <QVBoxLayout>
#include <cmath>
#include <limits>

namespace repa::ui {
namespace {

// A palette that stays readable on white, in the order series are listed.
const QColor kBlue(31, 119, 180), kOrange(255, 127, 14), kGreen(44, 160, 44), kRed(214, 39, 40), kPurple(148, 103, 189),
    kBrown(140, 86, 75);

constexpr int kDisplayIntervalMs = 33;  // ~30 Hz: smooth to the eye, cheap for the GUI thread
// Narrowest width a chart keeps its axis labels, title and legend readable at; the grid takes as many
// columns as fit (at most 3).
constexpr int kMinChartWidth = 330;
constexpr int kGridSpacing = 4;

}  // namespace

std::vector<ChartSpec> default_chart_specs() {
  std::vector<ChartSpec> specs;
  auto add = [&specs](QString id, QString title, QString y, std::vector<SeriesSpec> series, bool log_capable,
                      bool thresholds = false) {
    ChartSpec spec;
    spec.id = std::move(id);
    spec.title = std::move(title);
    spec.y_label = std::move(y);
    spec.series = std::move(series);
    spec.log_capable = log_capable;
    spec.threshold_lines = thresholds;
    specs.push_back(std::move(spec));
  };
  add(QStringLiteral("diffusionLoss"), QObject::tr("Diffusion loss"), QObject::tr("loss"),
      {{QStringLiteral("diffusion_loss"), QObject::tr("diffusion"), kBlue}}, true);
  add(QStringLiteral("repaAlignment"), QObject::tr("REPA alignment"), QObject::tr("value"),
      {{QStringLiteral("crepa_loss"), QObject::tr("alignment loss"), kOrange},
       {QStringLiteral("crepa_alignment_score"), QObject::tr("alignment score (cos)"), kGreen}},
      false);
  add(QStringLiteral("urepaLosses"), QObject::tr("U-REPA alignment and manifold"), QObject::tr("loss"),
      {{QStringLiteral("urepa_alignment_loss"), QObject::tr("alignment"), kOrange},
       {QStringLiteral("urepa_manifold_loss"), QObject::tr("manifold"), kPurple},
       {QStringLiteral("urepa_loss"), QObject::tr("weighted total"), kBrown}},
      false);
  add(QStringLiteral("totalLoss"), QObject::tr("Total loss"), QObject::tr("loss"),
      {{QStringLiteral("loss"), QObject::tr("total"), kRed}}, true);
  add(QStringLiteral("alignmentWeights"), QObject::tr("Scheduled alignment weight"), QObject::tr("weight"),
      {{QStringLiteral("crepa_weight"), QObject::tr("REPA weight"), kOrange, true},
       {QStringLiteral("urepa_weight"), QObject::tr("U-REPA weight"), kPurple, true}},
      false);
  add(QStringLiteral("similarityEma"), QObject::tr("Similarity EMA vs threshold"), QObject::tr("cosine"),
      {{QStringLiteral("crepa_alignment_score_ema"), QObject::tr("REPA similarity EMA"), kGreen},
       {QStringLiteral("urepa_similarity"), QObject::tr("U-REPA similarity"), kPurple}},
      false, true);
  add(QStringLiteral("learningRate"), QObject::tr("Learning rate"), QObject::tr("lr"),
      {{QStringLiteral("lr"), QObject::tr("lr"), kBlue}}, true);
  add(QStringLiteral("gradNorm"), QObject::tr("Gradient norm"), QObject::tr("norm"),
      {{QStringLiteral("grad_norm"), QObject::tr("grad norm"), kBrown}}, true);
  add(QStringLiteral("throughput"), QObject::tr("Throughput"), QObject::tr("images/s"),
      {{QStringLiteral("images_per_sec"), QObject::tr("images/s"), kGreen}}, true);
  return specs;
}

ChartBoard::ChartBoard(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("chartBoard"));
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Smoothing"), this));
  smoothing_slider_ = new QSlider(Qt::Horizontal, this);
  smoothing_slider_->setObjectName(QStringLiteral("smoothingSlider"));
  smoothing_slider_->setRange(0, 99);
  smoothing_slider_->setValue(60);
  smoothing_slider_->setMaximumWidth(160);
  smoothing_slider_->setToolTip(tr("Weight of the exponential moving average drawn over the raw values"));
  controls->addWidget(smoothing_slider_);
  smoothing_value_ = new QLabel(QStringLiteral("0.60"), this);
  controls->addWidget(smoothing_value_);
  log_scale_ = new QCheckBox(tr("Log scale"), this);
  log_scale_->setObjectName(QStringLiteral("logScaleToggle"));
  log_scale_->setToolTip(
      tr("Logarithmic y axis for losses, learning rate, gradient norm and throughput; a chart "
         "with values at or below zero stays linear and says so under its axes"));
  controls->addWidget(log_scale_);
  show_raw_ = new QCheckBox(tr("Raw values"), this);
  show_raw_->setObjectName(QStringLiteral("showRawToggle"));
  show_raw_->setToolTip(tr("Draw the unsmoothed values faintly under each smoothed line (per-step values are noisy)"));
  controls->addWidget(show_raw_);
  controls->addWidget(new QLabel(tr("X axis"), this));
  x_mode_ = new QComboBox(this);
  x_mode_->setObjectName(QStringLiteral("xAxisMode"));
  x_mode_->addItem(tr("Step"));
  x_mode_->addItem(tr("Wall time"));
  controls->addWidget(x_mode_);
  auto* reset = new QPushButton(tr("Reset view"), this);
  reset->setObjectName(QStringLiteral("resetView"));
  reset->setToolTip(tr("Follow the data again in every chart (double-click resets one chart)"));
  controls->addWidget(reset);
  controls->addStretch(1);

  auto* canvas = new QWidget(this);
  grid_ = new QGridLayout(canvas);
  grid_->setContentsMargins(2, 2, 2, 2);
  grid_->setSpacing(kGridSpacing);
  for (ChartSpec& spec : default_chart_specs()) {
    auto* chart = new MetricChart(spec, canvas);
    for (int i = 0; i < chart->series_count(); ++i)
      series_by_key_.insert(chart->spec().series[static_cast<size_t>(i)].key, {chart, i});
    charts_.push_back(chart);
  }
  shown_.assign(charts_.size(), true);
  relayout();
  auto* scroll = new QScrollArea(this);
  scroll_ = scroll;
  scroll->setObjectName(QStringLiteral("chartScroll"));
  scroll->setWidgetResizable(true);
  scroll->setWidget(canvas);
  scroll->setFrameShape(QFrame::NoFrame);
  // The grid reflows to the width instead (columns_for_width): only a vertical scroll bar.
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(controls);
  layout->addWidget(scroll, 1);

  connect(smoothing_slider_, &QSlider::valueChanged, this, [this](int v) {
    smoothing_value_->setText(QString::number(v / 100.0, 'f', 2));
    set_smoothing(v / 100.0);
  });
  connect(log_scale_, &QCheckBox::toggled, this, &ChartBoard::set_log_scale);
  connect(show_raw_, &QCheckBox::toggled, this, &ChartBoard::set_show_raw);
  connect(x_mode_, qOverload<int>(&QComboBox::currentIndexChanged), this,
          [this](int i) { set_x_mode(i == 0 ? XAxisMode::Step : XAxisMode::WallTime); });
  connect(reset, &QPushButton::clicked, this, &ChartBoard::reset_views);

  display_timer_ = new QTimer(this);
  display_timer_->setInterval(kDisplayIntervalMs);
  connect(display_timer_, &QTimer::timeout, this, &ChartBoard::refresh_now);
  display_timer_->start();
}

void ChartBoard::add_metrics(const nlohmann::json& event) {
  if (!event.is_object()) return;
  const auto step_it = event.find("step");
  if (step_it == event.end() || !step_it->is_number()) return;
  const double step = step_it->get<double>();
  const auto wall_it = event.find("wall_time");
  const double wall = wall_it != event.end() && wall_it->is_number() ? wall_it->get<double>() : step;
  ++metrics_received_;
  for (auto it = event.begin(); it != event.end(); ++it) {
    if (!it.value().is_number()) continue;
    const auto found = series_by_key_.constFind(QString::fromStdString(it.key()));
    if (found == series_by_key_.constEnd()) continue;
    found->first->append(found->second, step, wall, it.value().get<double>());
  }
}

void ChartBoard::set_run_config(const nlohmann::json& config) {
  MetricChart* similarity = chart(QStringLiteral("similarityEma"));
  auto threshold = [&config](const char* key) {
    const auto it = config.find(key);
    return it != config.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
  };
  if (!config.is_object()) return;
  // The config comes from the followed run_started line: a flag of another type counts as off.
  const auto flag = [&config](const char* key) {
    const auto it = config.find(key);
    return it != config.end() && it->is_boolean() && it->get<bool>();
  };
  const bool crepa = flag("crepa_enabled");
  const bool urepa = flag("urepa_enabled");
  similarity->set_threshold(0,
                            crepa ? threshold("crepa_similarity_threshold") : std::numeric_limits<double>::quiet_NaN());
  similarity->set_threshold(1,
                            urepa ? threshold("urepa_similarity_threshold") : std::numeric_limits<double>::quiet_NaN());
}

void ChartBoard::clear() {
  for (MetricChart* c : charts_) c->clear();
  metrics_received_ = 0;
  relayout();
}

int ChartBoard::refresh_now() {
  // Charts without data are hidden once a run reports (a SiT run has no U-REPA curves).
  bool layout_changed = false;
  for (size_t i = 0; i < charts_.size(); ++i) {
    const bool show = metrics_received_ == 0 || charts_[i]->has_data();
    if (show != shown_[i]) {
      shown_[i] = show;
      layout_changed = true;
    }
  }
  if (layout_changed) relayout();
  int redrawn = 0;
  for (MetricChart* c : charts_)
    if (c->refresh()) ++redrawn;
  return redrawn;
}

int ChartBoard::columns_for_width(int width) {
  for (int columns = 3; columns > 1; --columns)
    if (width >= columns * kMinChartWidth + (columns - 1) * kGridSpacing) return columns;
  return 1;
}

void ChartBoard::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  // What the grid gets: the width less a vertical scroll bar (reserved, so the count does not flip-flop).
  const int columns = columns_for_width(width() - scroll_->verticalScrollBar()->sizeHint().width() - 4);
  if (columns != columns_) {
    columns_ = columns;
    relayout();
  }
}

void ChartBoard::relayout() {
  for (MetricChart* c : charts_) grid_->removeWidget(c);
  for (int c = 0; c < 3; ++c) grid_->setColumnStretch(c, c < columns_ ? 1 : 0);
  int slot = 0;
  for (size_t i = 0; i < charts_.size(); ++i) {
    charts_[i]->setVisible(shown_[i]);
    if (!shown_[i]) continue;
    grid_->addWidget(charts_[i], slot / columns_, slot % columns_);
    ++slot;
  }
}

MetricChart* ChartBoard::chart(const QString& id) const {
  for (MetricChart* c : charts_)
    if (c->spec().id == id) return c;
  return nullptr;
}

void ChartBoard::set_smoothing(double weight) {
  for (MetricChart* c : charts_) c->set_smoothing(weight);
}

void ChartBoard::set_show_raw(bool on) {
  if (show_raw_->isChecked() != on) show_raw_->setChecked(on);
  for (MetricChart* c : charts_) c->set_show_raw(on);
}

void ChartBoard::set_log_scale(bool on) {
  for (MetricChart* c : charts_)
    if (c->spec().log_capable) c->set_log_scale(on);
}

void ChartBoard::set_x_mode(XAxisMode mode) {
  for (MetricChart* c : charts_) c->set_x_mode(mode);
}

void ChartBoard::reset_views() {
  for (MetricChart* c : charts_) c->reset_view();
}

QStringList ChartBoard::export_all(const QString& directory) {
  QStringList written;
  QDir().mkpath(directory);
  for (MetricChart* c : charts_) {
    if (!c->has_data()) continue;
    const QString base = QDir(directory).filePath(c->spec().id);
    if (c->export_png(base + QStringLiteral(".png"))) written << base + QStringLiteral(".png");
    if (c->export_csv(base + QStringLiteral(".csv"))) written << base + QStringLiteral(".csv");
  }
  return written;
}

}  // namespace repa::ui
