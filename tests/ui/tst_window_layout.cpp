// The window at laptop and desktop sizes, and the charts: the window opens inside the available screen,
// the chart grid reflows to the width without a horizontal scroll bar or clipped charts, legends sit
// outside the data, the settings dock keeps to about a quarter of the width; a log axis that cannot show
// negative totals says so; smoothing hides the raw noise; the schedule preview stays beside the
// schedule fields when the Advanced group is open; a long status line does not widen the window.
#include <qcustomplot.h>

#include <QDockWidget>
#include <QLabel>
#include <QScreen>
#include <QScrollArea>
#include <QScrollBar>
#include <QStatusBar>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtTest>
#include <cmath>

#include "ui/chart_board.h"
#include "ui/main_window.h"
#include "ui/metric_chart.h"
#include "ui/option_form.h"
#include "ui/schedule_preview.h"
#include "ui/settings_panel.h"

using repa::ui::ChartBoard;
using repa::ui::MainWindow;
using repa::ui::MetricChart;

namespace {

// A demo-like run: per-step noisy losses, a total that goes negative once REPA's term outweighs the rest.
void feed_run(ChartBoard* board, int steps) {
  for (int step = 1; step <= steps; ++step) {
    const double noise = std::sin(step * 12.9898) * 0.5;  // deterministic, fast-changing
    const double diffusion = 0.6 * std::exp(-step / 300.0) + 0.2 + 0.15 * noise;
    const double crepa = -0.5 * (0.2 + 0.6 * (1.0 - std::exp(-step / 200.0)));
    board->add_metrics({{"type", "metrics"},
                        {"step", step},
                        {"wall_time", step * 0.1},
                        {"diffusion_loss", diffusion},
                        {"crepa_loss", crepa},
                        {"crepa_alignment_score", -crepa / 0.5},
                        {"loss", diffusion + crepa},
                        {"crepa_weight", 0.5},
                        {"lr", 1e-4},
                        {"grad_norm", 1.0 + noise},
                        {"images_per_sec", 50.0}});
  }
  board->refresh_now();
}

QToolButton* main_advanced_toggle(QWidget* page) {
  // The Advanced group of the main fields sits directly in the page's layout (another is nested inside the
  // "Exported to SimpleTuner only" group).
  for (QToolButton* b : page->findChildren<QToolButton*>(QStringLiteral("advancedToggle")))
    if (b->text().startsWith(QStringLiteral("Advanced")) && page->layout()->indexOf(b->parentWidget()) >= 0) return b;
  return nullptr;
}

}  // namespace

class WindowLayoutTest : public QObject {
  Q_OBJECT

 private slots:
  void the_window_opens_inside_the_available_screen() {
    MainWindow window;
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    const QRect available = window.screen()->availableGeometry();
    QVERIFY2(window.width() <= available.width() && window.height() <= available.height(),
             qPrintable(QStringLiteral("%1x%2 on %3x%4")
                            .arg(window.width())
                            .arg(window.height())
                            .arg(available.width())
                            .arg(available.height())));
    QVERIFY(available.contains(window.geometry().topLeft()));
  }

  void a_long_status_line_does_not_widen_the_window() {
    MainWindow window;
    window.resize(1280, 760);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    const int before = window.minimumSizeHint().width();
    auto* line = window.findChild<QLabel*>(QStringLiteral("statusLine"));
    QVERIFY(line != nullptr);
    // A finished run's outputs or a failure can name long paths: the line is cut in the middle instead, and
    // never pushes the step, speed and memory fields out of view.
    const QString text = QStringLiteral("Finished at step 8 — ") + QString(600, QLatin1Char('x'));
    line->setText(text);
    QCoreApplication::processEvents();
    QCOMPARE(window.minimumSizeHint().width(), before);
    QVERIFY(window.width() <= 1280);
    QVERIFY(line->minimumSizeHint().width() < 100);
    QTRY_VERIFY(line->width() > 0);
    auto* memory = window.findChild<QLabel*>(QStringLiteral("statusMemory"));
    QVERIFY(memory != nullptr);
    QVERIFY(memory->geometry().right() < window.statusBar()->width());
    line->repaint();
    QCOMPARE(line->toolTip(), text);  // cut in the middle on screen, whole in the tooltip
    line->setText(QStringLiteral("Training"));
    line->repaint();
    QVERIFY(line->toolTip().isEmpty());
  }

  void laptop_and_desktop_sizes_reflow_the_charts_without_clipping() {
    MainWindow window;
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QVERIFY(window.settings()->load_preset(QStringLiteral("demo")));
    feed_run(window.charts(), 400);
    const struct { int width, height, columns; } sizes[] = {{1280, 800, 2}, {1600, 1000, 3}};
    for (const auto& size : sizes) {
      window.resize(size.width, size.height);
      QTest::qWait(50);
      QApplication::processEvents();
      window.charts()->refresh_now();
      const QString at = QStringLiteral("%1x%2").arg(size.width).arg(size.height);
      QCOMPARE(window.charts()->columns(), size.columns);
      QScrollArea* scroll = window.charts()->scroll_area();
      QVERIFY2(!scroll->horizontalScrollBar()->isVisible(), qPrintable(at));
      QCOMPARE(scroll->widget()->width(), scroll->viewport()->width());  // nothing wider than what shows
      for (MetricChart* chart : window.charts()->charts()) {
        if (chart->isHidden()) continue;
        const QRect in_viewport(chart->mapTo(scroll->viewport(), QPoint(0, 0)), chart->size());
        QVERIFY2(in_viewport.right() <= scroll->viewport()->width(),
                 qPrintable(at + QLatin1Char(' ') + chart->objectName()));
        QVERIFY2(chart->width() >= 300, qPrintable(at + QLatin1Char(' ') + chart->objectName()));
        QVERIFY(chart->legend_outside_data());
        // The axes use the chart's width (a footer must not squeeze them).
        QCustomPlot* plot = chart->plot();
        plot->replot();
        QVERIFY2(plot->axisRect()->width() >= plot->width() * 7 / 10,
                 qPrintable(at + QStringLiteral(" %1: axes %2 of %3")
                                     .arg(chart->objectName())
                                     .arg(plot->axisRect()->width())
                                     .arg(plot->width())));
      }
      // The REPA legend (two series) is drawn, under the axes: it does not overlap the data area.
      QCustomPlot* repa = window.charts()->chart(QStringLiteral("repaAlignment"))->plot();
      QVERIFY(repa->legend->visible());
      QVERIFY2(!repa->legend->outerRect().intersects(repa->axisRect()->rect()), qPrintable(at));
      // The settings dock takes about a quarter of the width, not a third.
      auto* dock = window.findChild<QDockWidget*>(QStringLiteral("settingsDock"));
      QVERIFY2(dock->width() <= window.width() * 30 / 100,
               qPrintable(at + QStringLiteral(" dock %1").arg(dock->width())));
      QVERIFY(dock->width() >= 320);
    }
    QCOMPARE(ChartBoard::columns_for_width(600), 1);
  }

  void log_scale_stays_linear_and_says_why_when_the_total_goes_negative() {
    ChartBoard board;
    board.resize(1100, 800);
    board.show();
    feed_run(&board, 1500);  // the total turns negative after about 400 steps
    board.findChild<QCheckBox*>(QStringLiteral("logScaleToggle"))->setChecked(true);
    board.refresh_now();
    MetricChart* total = board.chart(QStringLiteral("totalLoss"));
    MetricChart* diffusion = board.chart(QStringLiteral("diffusionLoss"));
    QVERIFY(total->log_scale());
    QVERIFY(!total->log_axis());  // the total reaches below zero
    QCOMPARE(total->plot()->yAxis->scaleType(), QCPAxis::stLinear);
    QVERIFY2(total->log_scale_note().contains(QStringLiteral("log axis cannot show")),
             qPrintable(total->log_scale_note()));
    QVERIFY(total->plot()->yAxis->range().lower < 0);  // the negative part is drawn, not blanked
    // A positive series goes logarithmic, without a note.
    QVERIFY(diffusion->log_axis());
    QCOMPARE(diffusion->plot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
    QVERIFY(diffusion->log_scale_note().isEmpty());
    board.findChild<QCheckBox*>(QStringLiteral("logScaleToggle"))->setChecked(false);
    board.refresh_now();
    QVERIFY(total->log_scale_note().isEmpty());
  }

  void smoothing_draws_one_clean_line_over_per_step_noise() {
    ChartBoard board;
    board.resize(1100, 800);
    board.show();
    feed_run(&board, 3000);
    board.set_smoothing(0.95);
    board.refresh_now();
    MetricChart* diffusion = board.chart(QStringLiteral("diffusionLoss"));
    QVERIFY(!diffusion->raw_drawn(0));  // no band of raw noise under the line
    // The drawn smoothed line over the last 1000 steps stays within a narrow band around the trend.
    QCPGraph* smooth = diffusion->plot()->graph(1);
    double lo = 1e9, hi = -1e9;
    for (auto it = smooth->data()->constBegin(); it != smooth->data()->constEnd(); ++it)
      if (it->key > 2000) {
        lo = std::min(lo, it->value);
        hi = std::max(hi, it->value);
      }
    QVERIFY2(hi - lo < 0.05, qPrintable(QStringLiteral("%1").arg(hi - lo)));  // the raw values spread 0.15
    // Asked for, the raw values come back faintly.
    board.findChild<QCheckBox*>(QStringLiteral("showRawToggle"))->setChecked(true);
    board.refresh_now();
    QVERIFY(diffusion->raw_drawn(0));
    board.set_smoothing(0.0);  // unsmoothed: the line is the raw values, drawn once
    board.refresh_now();
    QVERIFY(!diffusion->raw_drawn(0));
  }

  void schedule_preview_stays_beside_the_schedule_fields_with_advanced_open() {
    repa::ui::SettingsPanel panel;
    panel.resize(480, 1400);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    repa::ui::OptionForm* form = panel.form();
    QWidget* page = qobject_cast<QScrollArea*>(form->tabs()->currentWidget())->widget();
    auto* layout = qobject_cast<QVBoxLayout*>(page->layout());
    QToolButton* advanced = main_advanced_toggle(page);
    QVERIFY(advanced);
    advanced->setChecked(true);
    QWidget* preview = panel.schedule_preview();
    // REPA first, then U-REPA as well, then REPA alone again: the preview follows the enabled method's
    // last schedule field and never slips below the Advanced group.
    form->set_value("crepa_enabled", true);
    QCOMPARE(layout->indexOf(preview), layout->indexOf(form->row("crepa_threshold_mode")) + 1);
    form->set_value("urepa_enabled", true);
    QCOMPARE(layout->indexOf(preview), layout->indexOf(form->row("urepa_threshold_mode")) + 1);
    QVERIFY(layout->indexOf(preview) < layout->indexOf(advanced->parentWidget()));
    for (int i = 0; i < 5; ++i) form->set_value("urepa_lambda", 0.1 * (i + 1));
    QCOMPARE(layout->indexOf(preview), layout->indexOf(form->row("urepa_threshold_mode")) + 1);
    form->set_value("urepa_enabled", false);
    QCOMPARE(layout->indexOf(preview), layout->indexOf(form->row("crepa_threshold_mode")) + 1);
    QApplication::processEvents();
    QVERIFY(preview->mapTo(page, QPoint(0, 0)).y() < advanced->mapTo(page, QPoint(0, 0)).y());
  }
};

// The offscreen platform's screen is 800x600 unless told otherwise: give it a 1280x800 laptop screen, the
// size the window has to fit.
int main(int argc, char** argv) {
  if (qEnvironmentVariable("QT_QPA_PLATFORM") == QStringLiteral("offscreen"))
    qputenv("QT_QPA_PLATFORM", QByteArrayLiteral("offscreen:configfile=" REPA_UI_TEST_DIR "/screen_1280x800.json"));
  QApplication app(argc, argv);
  WindowLayoutTest test;
  return QTest::qExec(&test, argc, argv);
}
#include "tst_window_layout.moc"
