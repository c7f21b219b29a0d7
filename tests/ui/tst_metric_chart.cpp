// The live charts: smoothing, resumed runs, x by wall time, cut-off marker, thresholds, export, batching.
#include <qcustomplot.h>

#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "ui/chart_board.h"
#include "ui/metric_chart.h"

using repa::ui::ChartBoard;
using repa::ui::ChartSpec;
using repa::ui::MetricChart;
using repa::ui::XAxisMode;

namespace {

ChartSpec two_series_spec() {
  ChartSpec spec;
  spec.id = QStringLiteral("test");
  spec.title = QStringLiteral("test");
  spec.series = {{QStringLiteral("a"), QStringLiteral("a"), Qt::blue, true},
                 {QStringLiteral("b"), QStringLiteral("b"), Qt::red, false}};
  return spec;
}

double graph_value(QCPGraph* graph, int i) { return (graph->data()->constBegin() + i)->value; }
double graph_key(QCPGraph* graph, int i) { return (graph->data()->constBegin() + i)->key; }

}  // namespace

class MetricChartTest : public QObject {
  Q_OBJECT

 private slots:
  void smoothed_line_is_the_debiased_ema() {
    MetricChart chart(two_series_spec());
    chart.set_smoothing(0.5);
    chart.append(0, 1, 0.1, 1.0);
    chart.append(0, 2, 0.2, 2.0);
    chart.append(0, 3, 0.3, 3.0);
    // graphs: 0 raw a, 1 smooth a. EMA 0.5 debiased: 1, (0.5*0.5+1)/0.75, ((1.25*0.5)+1.5)/0.875
    QVERIFY(chart.refresh());
    QCPGraph* raw = chart.plot()->graph(0);
    QCPGraph* smooth = chart.plot()->graph(1);
    QCOMPARE(raw->dataCount(), 3);
    QCOMPARE(graph_value(raw, 2), 3.0);
    QVERIFY(std::abs(graph_value(smooth, 0) - 1.0) < 1e-12);
    QVERIFY(std::abs(graph_value(smooth, 1) - 1.25 / 0.75) < 1e-12);
    QVERIFY(std::abs(graph_value(smooth, 2) - 2.125 / 0.875) < 1e-12);
    QVERIFY(std::abs(chart.smoothed(0, 2) - 2.125 / 0.875) < 1e-12);
    // Changing the slider recomputes the whole line: 0 means the raw values.
    chart.set_smoothing(0.0);
    chart.refresh();
    QCOMPARE(graph_value(smooth, 1), 2.0);
    // The raw line is faint, the smoothed one opaque and wider.
    QVERIFY(raw->pen().color().alpha() < 128);
    QCOMPARE(smooth->pen().color().alpha(), 255);
  }

  void a_resumed_run_continues_the_same_curve() {
    MetricChart chart(two_series_spec());
    for (int s = 1; s <= 30; ++s) chart.append(1, s, s * 0.5, s);
    // The run was killed at step 30 and resumed from the checkpoint of step 20, with a fresh clock.
    chart.append(1, 21, 0.5, 121.0);
    chart.append(1, 22, 1.0, 122.0);
    QCOMPARE(chart.point_count(1), 22);
    QCOMPARE(chart.point(1, 19).value, 20.0);
    QCOMPARE(chart.point(1, 20).value, 121.0);
    // Wall time keeps increasing across the restart.
    QVERIFY(chart.point(1, 20).wall_time >= chart.point(1, 19).wall_time);
    QVERIFY(chart.point(1, 21).wall_time > chart.point(1, 20).wall_time);
    chart.refresh();
    QCOMPARE(chart.plot()->graph(2)->dataCount(), 22);
    QCOMPARE(graph_key(chart.plot()->graph(2), 21), 22.0);
  }

  void x_axis_by_wall_time() {
    MetricChart chart(two_series_spec());
    chart.append(0, 10, 2.5, 1.0);
    chart.append(0, 20, 5.0, 1.0);
    chart.set_x_mode(XAxisMode::WallTime);
    chart.refresh();
    QCOMPARE(graph_key(chart.plot()->graph(0), 1), 5.0);
    chart.set_x_mode(XAxisMode::Step);
    chart.refresh();
    QCOMPARE(graph_key(chart.plot()->graph(0), 1), 20.0);
  }

  void cutoff_is_marked_where_the_weight_drops_to_zero() {
    MetricChart chart(two_series_spec());
    chart.append(0, 0, 0, 0.0);  // warm-up starts at 0: not a cut-off
    QVERIFY(chart.plot()->itemCount() == 0 || !chart.plot()->item(0)->visible());
    for (int s = 1; s < 40; ++s) chart.append(0, s, s, 0.5);
    chart.append(0, 40, 40, 0.0);
    chart.append(0, 41, 41, 0.0);
    QCPItemStraightLine* line = nullptr;
    for (int i = 0; i < chart.plot()->itemCount(); ++i)
      if (auto* l = qobject_cast<QCPItemStraightLine*>(chart.plot()->item(i))) line = l;
    QVERIFY(line != nullptr);
    QVERIFY(line->visible());
    QCOMPARE(line->point1->coords().x(), 40.0);
  }

  void threshold_line_and_follow_ranges_include_it() {
    MetricChart chart(two_series_spec());
    chart.append(1, 1, 1, 0.2);
    chart.append(1, 2, 2, 0.3);
    chart.set_threshold(1, 0.9);
    QVERIFY(chart.refresh());
    QVERIFY(chart.plot()->yAxis->range().upper >= 0.9);
    QVERIFY(!chart.refresh());  // nothing new: no redraw
  }

  void log_scale_toggle() {
    MetricChart chart(two_series_spec());
    chart.set_log_scale(true);
    QCOMPARE(chart.plot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
    chart.append(0, 1, 1, 0.01);
    chart.append(0, 2, 2, 10.0);
    chart.refresh();
    QVERIFY(chart.plot()->yAxis->range().lower > 0);
    QVERIFY(chart.plot()->yAxis->range().lower < 0.01);
    chart.set_log_scale(false);
    QCOMPARE(chart.plot()->yAxis->scaleType(), QCPAxis::stLinear);
  }

  void zoom_stops_following_until_reset() {
    MetricChart chart(two_series_spec());
    chart.show();
    for (int s = 1; s <= 100; ++s) chart.append(0, s, s, s);
    chart.refresh();
    QVERIFY(chart.plot()->xAxis->range().upper >= 100);
    QTest::mousePress(chart.plot(), Qt::LeftButton, Qt::NoModifier, QPoint(100, 100));
    QTest::mouseRelease(chart.plot(), Qt::LeftButton, Qt::NoModifier, QPoint(100, 100));
    QVERIFY(!chart.following());
    chart.plot()->xAxis->setRange(10, 20);
    chart.append(0, 101, 101, 101);
    chart.refresh();
    QCOMPARE(chart.plot()->xAxis->range().upper, 20.0);
    chart.reset_view();
    QVERIFY(chart.following());
    QVERIFY(chart.plot()->xAxis->range().upper >= 101);
  }

  void a_long_curve_is_drawn_from_its_envelope() {
    MetricChart chart(two_series_spec());
    chart.set_smoothing(0.0);
    constexpr int kPoints = 200000;
    for (int s = 1; s <= kPoints; ++s) chart.append(1, s, s, s == 123457 ? 50.0 : std::sin(s * 0.001));
    chart.refresh();
    // QCustomPlot gets a few thousand points, yet the single spike and the true extremes are among them.
    QVERIFY(chart.drawn_count(1) <= 8192);
    QVERIFY(chart.drawn_count(1) >= 2 * chart.plot()->axisRect()->width() - 4);
    QCPGraph* raw = chart.plot()->graph(2);
    double top = -1e9, bottom = 1e9;
    for (auto it = raw->data()->constBegin(); it != raw->data()->constEnd(); ++it) {
      top = std::max(top, it->value);
      bottom = std::min(bottom, it->value);
    }
    QCOMPARE(top, 50.0);
    QVERIFY(bottom < -0.9999);
    // Zoomed in far enough (the user took over the view), every point is drawn.
    chart.show();
    QTest::mousePress(chart.plot(), Qt::LeftButton, Qt::NoModifier, QPoint(100, 100));
    QTest::mouseRelease(chart.plot(), Qt::LeftButton, Qt::NoModifier, QPoint(100, 100));
    QVERIFY(!chart.following());
    chart.plot()->xAxis->setRange(1000, 1500);
    QCOMPARE(chart.drawn_count(1), 503);  // 1000..1500 plus one beyond each edge
  }

  void exports_png_and_csv() {
    QTemporaryDir dir;
    MetricChart chart(two_series_spec());
    chart.set_smoothing(0.0);
    chart.append(0, 1, 0.5, 1.5);
    chart.append(1, 1, 0.5, -2.0);
    QVERIFY(chart.export_csv(dir.filePath(QStringLiteral("c.csv"))));
    QFile csv(dir.filePath(QStringLiteral("c.csv")));
    QVERIFY(csv.open(QIODevice::ReadOnly));
    const QStringList lines = QString::fromUtf8(csv.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 3);
    QCOMPARE(lines[0], QStringLiteral("series,step,wall_time,value,smoothed"));
    QCOMPARE(lines[1], QStringLiteral("a,1,0.5,1.5,1.5"));
    QCOMPARE(lines[2], QStringLiteral("b,1,0.5,-2,-2"));
    QVERIFY(chart.export_png(dir.filePath(QStringLiteral("c.png")), 400, 300));
    QImage image(dir.filePath(QStringLiteral("c.png")));
    QCOMPARE(image.size(), QSize(400, 300));
  }

  void board_routes_metrics_to_charts_and_hides_empty_ones() {
    ChartBoard board;
    board.set_smoothing(0.0);
    board.add_metrics({{"type", "metrics"}, {"step", 1}, {"wall_time", 0.1}, {"loss", 0.9}, {"diffusion_loss", 1.0},
                       {"crepa_loss", -0.2}, {"crepa_alignment_score", 0.4}, {"lr", 1e-4}, {"unknown_key", 3}});
    QCOMPARE(board.chart(QStringLiteral("totalLoss"))->point(0, 0).value, 0.9);
    QCOMPARE(board.chart(QStringLiteral("diffusionLoss"))->point(0, 0).value, 1.0);
    QCOMPARE(board.chart(QStringLiteral("repaAlignment"))->point(1, 0).value, 0.4);
    QCOMPARE(board.chart(QStringLiteral("learningRate"))->point(0, 0).value, 1e-4);
    QVERIFY(board.refresh_now() >= 4);
    // A SiT run reports no U-REPA values: that chart steps aside.
    QVERIFY(board.chart(QStringLiteral("urepaLosses"))->isHidden());
    QVERIFY(!board.chart(QStringLiteral("totalLoss"))->isHidden());
    // The similarity threshold of the config becomes a reference line.
    board.set_run_config({{"crepa_enabled", true}, {"crepa_similarity_threshold", 0.75}});
    bool found = false;
    QCustomPlot* sim = board.chart(QStringLiteral("similarityEma"))->plot();
    for (int i = 0; i < sim->itemCount(); ++i)
      if (auto* l = qobject_cast<QCPItemStraightLine*>(sim->item(i)))
        found = found || (l->visible() && l->point1->coords().y() == 0.75);
    QVERIFY(found);
  }

  void board_batches_redraws_at_display_rate() {
    ChartBoard board;
    board.show();
    int replots = 0;
    connect(board.chart(QStringLiteral("totalLoss"))->plot(), &QCustomPlot::afterReplot, this, [&replots] { ++replots; });
    QTest::qWait(50);
    replots = 0;
    // 2000 events in one go are drawn in a handful of frames, not 2000 times.
    for (int s = 1; s <= 2000; ++s) board.add_metrics({{"step", s}, {"wall_time", s * 0.01}, {"loss", 1.0 / s}});
    QCOMPARE(board.chart(QStringLiteral("totalLoss"))->point_count(0), 2000);
    QTest::qWait(200);
    QVERIFY2(replots >= 1 && replots <= 8, qPrintable(QString::number(replots)));
  }
};

QTEST_MAIN(MetricChartTest)
#include "tst_metric_chart.moc"
