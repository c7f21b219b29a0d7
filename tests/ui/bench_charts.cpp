// Chart ingestion and redraw with a million points per series (not a test: prints timings).
//   QT_QPA_PLATFORM=offscreen build/tests/ui/ui_bench_charts [points_per_series]
// Measures: appending N points to every series of every chart; routing metrics events through the
// board; a full redraw of each chart at N points; a live frame (new points + redraw) at N points.
#include <qcustomplot.h>

#include <QApplication>
#include <QElapsedTimer>
#include <cmath>
#include <cstdio>

#include "ui/chart_board.h"
#include "ui/metric_chart.h"

namespace {

double ms(const QElapsedTimer& t) { return static_cast<double>(t.nsecsElapsed()) / 1e6; }

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  const long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  repa::ui::ChartBoard board;
  board.resize(1600, 1000);
  board.show();
  QApplication::processEvents();
  const auto& charts = board.charts();
  int series_total = 0;
  for (auto* c : charts) series_total += c->series_count();

  // 1. Raw ingestion: every series of every chart gets n points, in step order, as a long run delivers them.
  QElapsedTimer timer;
  timer.start();
  for (long s = 1; s <= n; ++s) {
    const double step = static_cast<double>(s);
    const double noise = std::sin(step * 12.9898) * 0.05;
    for (auto* c : charts)
      for (int i = 0; i < c->series_count(); ++i) c->append(i, step, step * 0.05, 1.0 / std::sqrt(step) + noise + 0.01 * i + 0.1);
  }
  const double ingest_ms = ms(timer);
  std::printf("ingest: %ld points x %d series in %.0f ms (%.1f ns/point)\n", n, series_total, ingest_ms,
              ingest_ms * 1e6 / (static_cast<double>(n) * series_total));

  // 2. Full redraw of every chart at n points each (raw + smoothed graph per series), follow mode.
  for (auto* c : charts) c->reset_view();
  QApplication::processEvents();
  constexpr int kRounds = 5;
  timer.restart();
  for (int r = 0; r < kRounds; ++r)
    for (auto* c : charts) c->plot()->replot(QCustomPlot::rpImmediateRefresh);
  const double redraw_ms = ms(timer) / kRounds;
  std::printf("redraw: all %zu charts at %ld points/series: %.1f ms per frame (%.1f ms per chart)\n", charts.size(), n,
              redraw_ms, redraw_ms / static_cast<double>(charts.size()));

  // 3. A live frame: 30 new metrics events (1 s of a fast run at 30 Hz), then the board's batched redraw.
  constexpr int kFrames = 20;
  double event_ms = 0, frame_ms = 0;
  long step = n;
  for (int f = 0; f < kFrames; ++f) {
    timer.restart();
    for (int e = 0; e < 30; ++e) {
      ++step;
      board.add_metrics({{"type", "metrics"}, {"step", step}, {"wall_time", step * 0.05}, {"loss", 0.5},
                         {"diffusion_loss", 0.4}, {"crepa_loss", -0.3}, {"crepa_alignment_score", 0.6},
                         {"crepa_weight", 0.5}, {"crepa_alignment_score_ema", 0.58}, {"urepa_loss", 0.1},
                         {"urepa_alignment_loss", -0.5}, {"urepa_manifold_loss", 0.02}, {"urepa_weight", 0.5},
                         {"urepa_similarity", 0.5}, {"lr", 1e-4}, {"grad_norm", 1.2}, {"images_per_sec", 300.0}});
    }
    event_ms += ms(timer);
    timer.restart();
    board.refresh_now();
    for (auto* c : charts) c->plot()->replot(QCustomPlot::rpImmediateRefresh);  // what the queued replot does
    frame_ms += ms(timer);
  }
  std::printf("live: 30 events routed in %.2f ms (%.1f us/event); batched frame redraw %.1f ms\n", event_ms / kFrames,
              event_ms / kFrames / 30 * 1000, frame_ms / kFrames);

  // 4. Smoothing slider moved: every smoothed line recomputed at n points.
  timer.restart();
  board.set_smoothing(0.9);
  std::printf("smoothing change: %.0f ms for %d series of %ld points\n", ms(timer), series_total, n);
  return 0;
}
