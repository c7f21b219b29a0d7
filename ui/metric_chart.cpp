#include "ui/metric_chart.h"

#include <qcustomplot.h>

#include <QFile>
#include <QFileDialog>
#include <QMenu>
#include <QTextStream>
#include <QVBoxLayout>
#include <cmath>
#include <limits>
#include <tuple>

namespace repa::ui {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QColor faint(QColor c) {
  c.setAlpha(70);
  return c;
}

// The row under the axes for the legend and notes. An empty QCPLayoutGrid reports a maximum width of 0,
// which would cap the width of the axes above it; the footer never limits the width.
class Footer : public QCPLayoutGrid {
 public:
  QSize maximumOuterSizeHint() const override {
    return {QWIDGETSIZE_MAX, QCPLayoutGrid::maximumOuterSizeHint().height()};
  }
};

void set_axis_scale(QCPAxis* axis, bool log) {
  if (log) {
    axis->setScaleType(QCPAxis::stLogarithmic);
    axis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    axis->setNumberFormat(QStringLiteral("eb"));
    axis->setNumberPrecision(0);
  } else {
    axis->setScaleType(QCPAxis::stLinear);
    axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    axis->setNumberFormat(QStringLiteral("gb"));
    axis->setNumberPrecision(4);
  }
}

}  // namespace

QCPLayoutGrid* new_chart_footer() {
  auto* footer = new Footer;
  footer->setMargins(QMargins(0, 0, 0, 0));
  footer->setRowSpacing(0);
  return footer;
}

MetricChart::MetricChart(ChartSpec spec, QWidget* parent) : QWidget(parent), spec_(std::move(spec)) {
  setObjectName(spec_.id);
  plot_ = new QCustomPlot(this);
  plot_->setObjectName(spec_.id + QStringLiteral("Plot"));
  plot_->setMinimumSize(200, 200);  // the chart board picks columns that leave each chart wider than this
  plot_->setNoAntialiasingOnDrag(true);
  // Wide lines as separate segments: Qt strokes a long wide polyline as one path, many times slower.
  plot_->setPlottingHint(QCP::phFastPolylines, true);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->axisRect()->setRangeDrag(Qt::Horizontal | Qt::Vertical);
  plot_->axisRect()->setRangeZoom(Qt::Horizontal | Qt::Vertical);
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(spec_.y_label);
  plot_->plotLayout()->insertRow(0);
  auto* title = new QCPTextElement(plot_, spec_.title, QFont(font().family(), 10, QFont::Bold));
  plot_->plotLayout()->addElement(0, 0, title);
  plot_->legend->setVisible(false);
  plot_->legend->setFont(QFont(font().family(), 8));
  plot_->legend->setBorderPen(Qt::NoPen);
  plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  plot_->legend->setWrap(3);
  // Legend and notes go in a footer row under the axes, never over the curves.
  plot_->axisRect()->insetLayout()->take(plot_->legend);
  footer_ = new_chart_footer();
  plot_->plotLayout()->addElement(2, 0, footer_);
  plot_->plotLayout()->setRowStretchFactor(2, 0.001);
  plot_->plotLayout()->setRowSpacing(0);
  note_ = new QCPTextElement(plot_, QString(), QFont(font().family(), 8));
  note_->setTextColor(QColor(0x8a, 0x6d, 0x00));
  note_->setVisible(false);

  series_.resize(spec_.series.size());
  for (size_t i = 0; i < spec_.series.size(); ++i) {
    const SeriesSpec& s = spec_.series[i];
    Series& series = series_[i];
    series.threshold = kNaN;
    series.raw_graph = plot_->addGraph();
    series.raw_graph->setVisible(false);
    series.raw_graph->setPen(QPen(faint(s.color), 1));
    series.raw_graph->setAdaptiveSampling(true);
    series.raw_graph->setAntialiased(false);  // a faint 1 px line: antialiasing costs much and shows little
    series.raw_graph->removeFromLegend();
    series.smooth_graph = plot_->addGraph();
    series.smooth_graph->setPen(QPen(s.color, 2));
    series.smooth_graph->setAdaptiveSampling(true);
    series.smooth_graph->setName(s.label);
  }

  // A drag or wheel zoom means the user wants to look somewhere: stop following the data until Reset view.
  connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent*) { follow_ = false; });
  connect(plot_, &QCustomPlot::mouseWheel, this, [this](QWheelEvent*) { follow_ = false; });
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { reset_view(); });
  // A pan or zoom needs the points of the new range before QCustomPlot draws it (cheap: a few thousand).
  connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this](const QCPRange&) {
    if (!updating_view_ && !follow_) update_view();
  });

  // Right-click: this chart's own view and exports.
  plot_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(plot_, &QWidget::customContextMenuRequested, this, [this](const QPoint& at) {
    QMenu menu(this);
    menu.addAction(tr("Reset view"), this, &MetricChart::reset_view);
    menu.addAction(tr("Log scale"), this, [this](bool on) { set_log_scale(on); })->setCheckable(true);
    menu.actions().back()->setChecked(log_scale_);
    menu.addSeparator();
    menu.addAction(tr("Export PNG…"), this, [this] {
      const QString path = QFileDialog::getSaveFileName(this, tr("Export chart"), spec_.id + QStringLiteral(".png"),
                                                        tr("PNG image (*.png)"));
      if (!path.isEmpty()) export_png(path);
    });
    menu.addAction(tr("Export CSV…"), this, [this] {
      const QString path = QFileDialog::getSaveFileName(this, tr("Export chart data"), spec_.id + QStringLiteral(".csv"),
                                                        tr("CSV (*.csv)"));
      if (!path.isEmpty()) export_csv(path);
    });
    menu.exec(plot_->mapToGlobal(at));
  });

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(plot_);
  set_axis_scale(plot_->yAxis, false);
  set_log_scale(false);
}

bool MetricChart::has_data() const {
  for (const Series& s : series_)
    if (!s.step.empty()) return true;
  return false;
}

MetricPoint MetricChart::point(int index, int i) const {
  const Series& s = series_.at(static_cast<size_t>(index));
  const auto k = static_cast<size_t>(i);
  return {s.step.at(k), s.wall.at(k), s.value.at(k)};
}

double MetricChart::smooth_next(Series& s, double value) const {
  // Debiased EMA so the first points are not dragged towards zero; NaN/inf are drawn raw but not smoothed in.
  if (!std::isfinite(value)) return s.ema_norm > 0 ? s.ema : value;
  s.ema_biased = smoothing_ * s.ema_biased + (1.0 - smoothing_) * value;
  s.ema_norm = smoothing_ * s.ema_norm + (1.0 - smoothing_);
  s.ema = s.ema_biased / s.ema_norm;
  return s.ema;
}

void MetricChart::include_in_bounds(double x, double y) {
  if (!std::isfinite(x) || !std::isfinite(y)) return;
  if (!have_bounds_) {
    x_min_ = x_max_ = x;
    y_min_ = y_max_ = y;
    y_min_positive_ = y > 0 ? y : 0;
    have_bounds_ = true;
    return;
  }
  x_min_ = std::min(x_min_, x);
  x_max_ = std::max(x_max_, x);
  y_min_ = std::min(y_min_, y);
  y_max_ = std::max(y_max_, y);
  if (y > 0 && (y_min_positive_ <= 0 || y < y_min_positive_)) y_min_positive_ = y;
}

void MetricChart::append(int index, double step, double wall_time, double value) {
  Series& s = series_.at(static_cast<size_t>(index));
  if (!s.step.empty() && step <= s.step.back()) {
    // A resumed run replays from its checkpoint: keep what came before it, continue from there.
    const auto keep = static_cast<size_t>(std::lower_bound(s.step.begin(), s.step.end(), step) - s.step.begin());
    for (auto* column : {&s.step, &s.wall, &s.value, &s.smooth}) column->resize(keep);
    const double last_wall = s.wall.empty() ? 0.0 : s.wall.back();
    if (wall_time + s.wall_offset < last_wall) s.wall_offset = last_wall - wall_time;
    s.step.push_back(step);
    s.wall.push_back(wall_time + s.wall_offset);
    s.value.push_back(value);
    s.smooth.push_back(value);
    rebuild_graphs(Rebuild::All);
    return;
  }
  // Wall time keeps increasing when a resumed worker restarts its clock.
  if (!s.wall.empty() && wall_time + s.wall_offset < s.wall.back()) s.wall_offset = s.wall.back() - wall_time;
  s.step.push_back(step);
  s.wall.push_back(wall_time + s.wall_offset);
  s.value.push_back(value);
  s.smooth.push_back(smooth_next(s, value));
  const size_t i = s.step.size() - 1;
  s.raw_lod.append(s.value, i);
  s.smooth_lod.append(s.smooth, i);
  const double x = xs(s)[i];
  include_in_bounds(x, value);
  update_cutoff(index, x, value);
  dirty_ = true;
}

void MetricChart::update_cutoff(int index, double x, double value) {
  Series& s = series_[static_cast<size_t>(index)];
  if (!spec_.series[static_cast<size_t>(index)].mark_cutoff) return;
  if (value > 0) {
    s.seen_positive = true;
    if (s.cutoff_line) s.cutoff_line->setVisible(false);  // recoverable mode: the weight came back
    if (s.cutoff_text) s.cutoff_text->setVisible(false);
    return;
  }
  // The schedule reports a zero weight as a cut-off; zero during warm-up (before any weight) is not one.
  if (!s.seen_positive || (s.cutoff_line && s.cutoff_line->visible())) return;
  place_cutoff(s, x);
}

void MetricChart::place_cutoff(Series& s, double x) {
  const QColor color = spec_.series[static_cast<size_t>(&s - series_.data())].color;
  if (!s.cutoff_line) {
    s.cutoff_line = new QCPItemStraightLine(plot_);
    s.cutoff_line->setPen(QPen(color, 1.5, Qt::DashLine));
    s.cutoff_text = new QCPItemText(plot_);
    s.cutoff_text->setColor(color);
    s.cutoff_text->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    s.cutoff_text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    s.cutoff_text->setText(tr("cut-off"));
  }
  s.cutoff_line->point1->setCoords(x, 0);
  s.cutoff_line->point2->setCoords(x, 1);
  s.cutoff_text->position->setCoords(x, 0.05);
  s.cutoff_line->setVisible(true);
  s.cutoff_text->setVisible(true);
}

void MetricChart::rebuild_graphs(Rebuild what) {
  have_bounds_ = false;
  for (size_t i = 0; i < series_.size(); ++i) {
    Series& s = series_[i];
    s.ema = s.ema_biased = s.ema_norm = 0;
    s.seen_positive = false;
    if (s.cutoff_line) s.cutoff_line->setVisible(false);
    if (s.cutoff_text) s.cutoff_text->setVisible(false);
    const std::vector<double>& x = xs(s);
    for (size_t k = 0; k < s.value.size(); ++k) {
      s.smooth[k] = smooth_next(s, s.value[k]);
      include_in_bounds(x[k], s.value[k]);
      update_cutoff(static_cast<int>(i), x[k], s.value[k]);
    }
    // The pyramids hold indices, not x: switching the x axis keeps them.
    if (what == Rebuild::All) s.raw_lod.rebuild(s.value);
    if (what != Rebuild::Bounds) s.smooth_lod.rebuild(s.smooth);
    if (s.threshold_line) set_threshold(static_cast<int>(i), s.threshold);
  }
  dirty_ = true;
}

void MetricChart::update_view() {
  // What QCustomPlot draws is about two points per pixel column (each bucket's minimum and maximum)
  // whatever the run's length, so a redraw costs the same at step 100 and at step 1,000,000.
  const size_t max_drawn = static_cast<size_t>(std::max(2 * plot_->axisRect()->width(), 1024));
  updating_view_ = true;
  const QCPRange range = plot_->xAxis->range();
  for (Series& s : series_) {
    const std::vector<double>& x = xs(s);
    // One point beyond each edge so the lines run to the border of the chart.
    size_t first = static_cast<size_t>(std::lower_bound(x.begin(), x.end(), range.lower) - x.begin());
    size_t last = static_cast<size_t>(std::upper_bound(x.begin(), x.end(), range.upper) - x.begin());
    first = first > 0 ? first - 1 : 0;
    last = std::min(x.size(), last + 1);
    for (auto [graph, values, lod] : {std::tuple{s.raw_graph, &s.value, &s.raw_lod}, std::tuple{s.smooth_graph, &s.smooth, &s.smooth_lod}}) {
      lod->visible_indices(*values, first, last, max_drawn, scratch_);
      QVector<QCPGraphData> data;
      data.reserve(static_cast<int>(scratch_.size()));
      for (uint32_t k : scratch_) data.append(QCPGraphData(x[k], (*values)[k]));
      graph->data()->set(data, true);
    }
  }
  updating_view_ = false;
  // The legend names only the series this run reports (a SiT run has no U-REPA weight).
  for (Series& s : series_) {
    if (!s.step.empty()) s.smooth_graph->addToLegend();
    else s.smooth_graph->removeFromLegend();
    s.raw_graph->setVisible(show_raw_ && smoothing_ > 0);
  }
  place_footer();
}

void MetricChart::place_footer() {
  int with_data = 0;
  for (const Series& s : series_) with_data += s.step.empty() ? 0 : 1;
  const bool legend = with_data > 1;
  const bool note = !log_scale_note().isEmpty();
  note_->setText(log_scale_note());
  // Elements are taken out of the footer when silent, so an empty footer takes no height.
  if (footer_->hasElement(0, 0)) footer_->take(footer_->element(0, 0));
  if (footer_->hasElement(1, 0)) footer_->take(footer_->element(1, 0));
  footer_->simplify();
  plot_->legend->setVisible(legend);
  note_->setVisible(note);
  int row = 0;
  if (legend) footer_->addElement(row++, 0, plot_->legend);
  if (note) footer_->addElement(row++, 0, note_);
}

bool MetricChart::log_axis() const { return log_axis_; }

QString MetricChart::log_scale_note() const {
  if (!log_scale_ || log_axis_ || !have_bounds_) return {};
  return tr("linear axis: values reach %1, which a log axis cannot show").arg(QString::number(y_min_, 'g', 3));
}

bool MetricChart::legend_outside_data() const {
  return !plot_->axisRect()->insetLayout()->elements(false).contains(plot_->legend);
}

bool MetricChart::raw_drawn(int index) const { return series_.at(static_cast<size_t>(index)).raw_graph->visible(); }

void MetricChart::set_show_raw(bool on) {
  show_raw_ = on;
  dirty_ = true;
}

void MetricChart::apply_follow_ranges() {
  if (!have_bounds_) {
    plot_->xAxis->setRange(0, 1);
    plot_->yAxis->setRange(log_axis_ ? 0.1 : 0, 1);
    return;
  }
  double lo = y_min_, hi = y_max_;
  for (const Series& s : series_)
    if (std::isfinite(s.threshold)) {
      lo = std::min(lo, s.threshold);
      hi = std::max(hi, s.threshold);
    }
  const double x_span = x_max_ > x_min_ ? x_max_ - x_min_ : 1.0;
  plot_->xAxis->setRange(x_min_, x_max_ + 0.02 * x_span);
  if (log_axis_) {
    const double positive_lo = y_min_positive_ > 0 ? y_min_positive_ : 1e-6;
    const double positive_hi = hi > positive_lo ? hi : positive_lo * 10;
    plot_->yAxis->setRange(positive_lo / 1.5, positive_hi * 1.5);
  } else {
    const double span = hi > lo ? hi - lo : std::max(std::abs(hi), 1e-3);
    plot_->yAxis->setRange(lo - 0.05 * span, hi + 0.05 * span);
  }
}

bool MetricChart::refresh() {
  if (!dirty_) return false;
  dirty_ = false;
  apply_axis_scale();
  if (follow_) apply_follow_ranges();
  update_view();
  plot_->replot(QCustomPlot::rpQueuedReplot);
  return true;
}

int MetricChart::drawn_count(int index) const { return series_.at(static_cast<size_t>(index)).raw_graph->dataCount(); }

void MetricChart::set_smoothing(double weight) {
  weight = std::clamp(weight, 0.0, 0.999);
  if (weight == smoothing_) return;
  smoothing_ = weight;
  rebuild_graphs(Rebuild::Smoothing);
}

void MetricChart::set_log_scale(bool on) {
  log_scale_ = on;
  follow_ = true;
  dirty_ = true;
  apply_axis_scale();
}

void MetricChart::apply_axis_scale() {
  // A value at or below zero (the total loss once REPA's negative cosine term outweighs the rest) has no
  // place on a log axis: stay linear rather than blank the chart, and say so in the footer.
  const bool on = log_scale_ && (!have_bounds_ || y_min_ > 0);
  if (on != log_axis_) {
    log_axis_ = on;
    set_axis_scale(plot_->yAxis, on);
    follow_ = true;
  }
  place_footer();
}

void MetricChart::set_x_mode(XAxisMode mode) {
  if (mode == x_mode_) return;
  x_mode_ = mode;
  plot_->xAxis->setLabel(mode == XAxisMode::Step ? tr("step") : tr("wall time (s)"));
  follow_ = true;
  rebuild_graphs(Rebuild::Bounds);
}

void MetricChart::set_threshold(int index, double value) {
  Series& s = series_.at(static_cast<size_t>(index));
  s.threshold = value;
  if (!std::isfinite(value)) {
    if (s.threshold_line) s.threshold_line->setVisible(false);
    dirty_ = true;
    return;
  }
  if (!s.threshold_line) {
    s.threshold_line = new QCPItemStraightLine(plot_);
    s.threshold_line->setPen(QPen(spec_.series[static_cast<size_t>(index)].color, 1.2, Qt::DotLine));
  }
  s.threshold_line->point1->setCoords(0, value);
  s.threshold_line->point2->setCoords(1, value);
  s.threshold_line->setVisible(true);
  dirty_ = true;
}

void MetricChart::reset_view() {
  follow_ = true;
  dirty_ = true;
  refresh();
}

void MetricChart::clear() {
  for (Series& s : series_) {
    for (auto* column : {&s.step, &s.wall, &s.value, &s.smooth}) column->clear();
    s.wall_offset = 0;
  }
  rebuild_graphs(Rebuild::All);
}

bool MetricChart::export_png(const QString& path, int width, int height) {
  refresh();
  update_view();
  return plot_->savePng(path, width, height);
}

bool MetricChart::export_csv(const QString& path) const {
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate | QIODevice::Text)) return false;
  QTextStream out(&file);
  out << "series,step,wall_time,value,smoothed\n";
  for (size_t i = 0; i < series_.size(); ++i) {
    const Series& s = series_[i];
    for (size_t k = 0; k < s.step.size(); ++k)
      out << spec_.series[i].key << ',' << QString::number(s.step[k], 'g', 12) << ','
          << QString::number(s.wall[k], 'g', 12) << ',' << QString::number(s.value[k], 'g', 9) << ','
          << QString::number(s.smooth[k], 'g', 9) << '\n';
  }
  return out.status() == QTextStream::Ok && file.flush();
}

}  // namespace repa::ui
