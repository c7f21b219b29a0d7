// The window driving the real worker (repa-train run --events stdio) on the demo preset, offscreen:
// Start, points in the charts, Pause/Resume, a clean end; then a worker killed mid-run is reported and
// resumed from its checkpoint, and Stop ends it cleanly. Screenshots of the window during the run.
#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QDir>
#include <QPushButton>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <csignal>

#include "ui/chart_board.h"
#include "ui/failure_panel.h"
#include "ui/main_window.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/samples_gallery.h"
#include "ui/settings_panel.h"

using repa::ui::MainWindow;
using repa::ui::RunState;

namespace {

// Generous: the first start generates the demo dataset and fills its caches, and a loaded CI machine may
// run the demo ten times slower than an idle one.
constexpr int kTimeoutMs = 300000;

int points(MainWindow& window, const char* chart = "totalLoss") {
  return window.charts()->chart(QString::fromLatin1(chart))->point_count(0);
}

void load_demo(MainWindow& window, const QTemporaryDir& dir, int max_steps) {
  QVERIFY(window.settings()->load_preset(QStringLiteral("demo")));
  window.settings()->form()->set_value("output_dir", dir.path().toStdString());
  window.settings()->form()->set_value("max_train_steps", max_steps);
  window.settings()->form()->set_value("studio.threads", 2);
}

void save_screenshot(MainWindow& window, const char* name) {
  QDir().mkpath(QStringLiteral(REPA_SCREENSHOT_DIR));
  const QString path = QStringLiteral(REPA_SCREENSHOT_DIR "/") + QString::fromLatin1(name);
  QVERIFY(window.grab().save(path));
  QVERIFY(QFileInfo(path).size() > 20000);
}

}  // namespace

class DemoRunTest : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;  // shared: the second case reuses the first one's dataset cache

 private slots:
  void start_pause_resume_and_a_clean_end() {
    MainWindow window;
    window.controller()->set_program(QStringLiteral(REPA_TRAIN_EXE));
    window.resize(1600, 1000);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    load_demo(window, dir_, 24);
    QVERIFY2(window.start_run(), qPrintable(window.settings()->problem_summary()));
    QTRY_VERIFY_WITH_TIMEOUT(points(window) >= 1, kTimeoutMs);
    window.findChild<QAction*>(QStringLiteral("actionPause"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Paused, kTimeoutMs);
    const int at_pause = points(window);
    QTest::qWait(700);
    QCOMPARE(points(window), at_pause);  // paused: no step
    window.findChild<QAction*>(QStringLiteral("actionPause"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, kTimeoutMs);

    // The demo trains a SiT with REPA: its diffusion, alignment, weight and LR curves all fill.
    QTRY_VERIFY_WITH_TIMEOUT(points(window) >= 16, kTimeoutMs);
    QVERIFY(points(window, "diffusionLoss") >= 16);
    QVERIFY(points(window, "repaAlignment") >= 16);
    QVERIFY(points(window, "alignmentWeights") >= 16);
    QVERIFY(points(window, "learningRate") >= 16);
    QCOMPARE(window.charts()->chart(QStringLiteral("urepaLosses"))->point_count(0), 0);
    save_screenshot(window, "main_window.png");

    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), kTimeoutMs);
    QCOMPARE(window.shown_state(), RunState::Finished);
    QCOMPARE(points(window), 24);
    QVERIFY(window.failure_panel()->isHidden());
    QTRY_VERIFY_WITH_TIMEOUT(window.gallery()->count() >= 1, kTimeoutMs);  // the grid of the last step
    QCOMPARE(window.gallery()->steps().front(), 24);
  }

  void a_killed_worker_is_reported_and_resumed_then_stopped() {
    MainWindow window;
    window.controller()->set_program(QStringLiteral(REPA_TRAIN_EXE));
    window.resize(1600, 1000);
    window.show();
    load_demo(window, dir_, 100000);
    window.settings()->form()->set_value("checkpoint_step_interval", 5);
    // The first case left checkpoint-24 in the run folder: Start asks, and this run continues from it.
    QTimer::singleShot(0, [] {
      auto* dialog = QApplication::activeModalWidget();
      QVERIFY(dialog && dialog->objectName() == QStringLiteral("startChoiceDialog"));
      dialog->findChild<QPushButton*>(QStringLiteral("continueCheckpointButton"))->click();
    });
    QVERIFY(window.start_run());
    // Past a checkpoint of this run (it resumes from the first case's last checkpoint, step 24).
    QTRY_VERIFY_WITH_TIMEOUT(window.controller()->progress().step >= 32, kTimeoutMs);
    ::kill(static_cast<pid_t>(window.controller()->process_id()), SIGKILL);
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Failed, kTimeoutMs);
    QVERIFY(!window.failure_panel()->isHidden());
    QVERIFY2(window.failure_panel()->reason().contains(QStringLiteral("SIGKILL")), qPrintable(window.failure_panel()->reason()));
    QVERIFY(window.resume_from_checkpoint_action()->isEnabled());
    save_screenshot(window, "worker_killed.png");
    const qint64 killed_at = window.controller()->progress().step;

    window.failure_panel()->resume_button()->click();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, kTimeoutMs);
    QTRY_VERIFY_WITH_TIMEOUT(window.controller()->progress().step > killed_at + 2, kTimeoutMs);
    // The curve continued from the checkpoint: steps strictly increasing, no second copy of the replayed part.
    const repa::ui::MetricChart* total = window.charts()->chart(QStringLiteral("totalLoss"));
    for (int i = 1; i < total->point_count(0); ++i) QVERIFY(total->point(0, i).step > total->point(0, i - 1).step);

    window.findChild<QAction*>(QStringLiteral("actionStop"))->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), kTimeoutMs);
    QCOMPARE(window.shown_state(), RunState::Stopped);
    QVERIFY(window.failure_panel()->isHidden());
  }
};

QTEST_MAIN(DemoRunTest)
#include "tst_demo_run.moc"
