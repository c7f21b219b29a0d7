// The Samples tab of a run started from the window with the real worker, its output folder relative to
// where the studio runs (the demo preset's "runs"), and the large sample viewer on what that run drew.
#include <QDir>
#include <QListWidget>
#include <QPushButton>
#include <QTemporaryDir>
#include <QtTest>

#include "ui/main_window.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/sample_viewer.h"
#include "ui/samples_gallery.h"
#include "ui/settings_panel.h"

using repa::ui::MainWindow;
using repa::ui::RunState;

namespace {
constexpr int kTimeoutMs = 300000;  // the first demo start generates its dataset and fills caches
}

class SamplesTest : public QObject {
  Q_OBJECT

 private slots:
  void cells_and_paths() {
    // 16 cells of 32 px in 8 columns with 2 px borders: 274 x 70.
    QCOMPARE(repa::ui::sample_cell_rect(QSize(274, 70), 16, 9), QRect(36, 36, 32, 32));
    QCOMPARE(repa::ui::sample_cell_rect(QSize(274, 70), 16, 0), QRect(2, 2, 32, 32));
    QVERIFY(repa::ui::sample_cell_rect(QSize(275, 70), 16, 0).isNull());  // not the worker's layout
    QVERIFY(repa::ui::sample_cell_rect(QSize(274, 70), 16, 16).isNull());
    QTemporaryDir dir;
    QVERIFY(QDir(dir.path()).mkpath(QStringLiteral("runs/demo/samples")));
    QFile png(dir.filePath(QStringLiteral("runs/demo/samples/step-000004.png")));
    QVERIFY(png.open(QIODevice::WriteOnly));
    png.close();
    const QString run = dir.filePath(QStringLiteral("runs/demo"));
    const QString want = QDir::cleanPath(dir.filePath(QStringLiteral("runs/demo/samples/step-000004.png")));
    // The worker's path already holds the run folder: relative to its working directory, never joined twice.
    QCOMPARE(repa::ui::resolve_sample_path(QStringLiteral("runs/demo/samples/step-000004.png"), dir.path(), run), want);
    // A headless run started elsewhere: found in the run folder's samples/.
    QCOMPARE(repa::ui::resolve_sample_path(QStringLiteral("other/demo/samples/step-000004.png"), QString(), run), want);
    QCOMPARE(repa::ui::resolve_sample_path(want, QStringLiteral("/nowhere"), run), want);
  }

  void a_window_run_with_a_relative_output_dir_shows_its_samples() {
    QTemporaryDir dir;
    const QString before = QDir::currentPath();
    QVERIFY(QDir::setCurrent(dir.path()));
    MainWindow window;
    window.controller()->set_program(QStringLiteral(REPA_TRAIN_EXE));
    window.show();
    QVERIFY(window.settings()->load_preset(QStringLiteral("demo")));
    const std::string output_dir = window.settings()->form()->config().value("output_dir", std::string());
    QCOMPARE(QString::fromStdString(output_dir), QStringLiteral("runs"));  // relative, as shipped
    window.settings()->form()->set_value("max_train_steps", 4);
    window.settings()->form()->set_value("validation_step_interval", 2);
    window.settings()->form()->set_value("checkpoint_step_interval", 100);
    window.settings()->form()->set_value("studio.threads", 2);
    QVERIFY2(window.start_run(), qPrintable(window.settings()->problem_summary()));
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), kTimeoutMs);
    QCOMPARE(window.shown_state(), RunState::Finished);
    QTRY_COMPARE_WITH_TIMEOUT(window.gallery()->count(), 2, 5000);
    QCOMPARE(window.gallery()->steps(), (QList<qint64>{4, 2}));
    const auto grids = window.gallery()->grids();
    QCOMPARE(grids[0].path, QDir(dir.path()).absoluteFilePath(QStringLiteral("runs/demo/samples/step-000002.png")));
    QVERIFY(grids[1].classes.size() >= 8);  // one class name per cell, from the sample event
    QCOMPARE(grids[1].seed, 0);

    // The newest grid's first cell, large, with its class, step and seed.
    repa::ui::SampleViewer* viewer = window.gallery()->open_viewer(0);
    QVERIFY(viewer && viewer->isVisible());
    QCOMPARE(viewer->current_step(), 4);
    QCOMPARE(viewer->cell_count(), grids[1].classes.size());
    QVERIFY2(viewer->caption().startsWith(
                 QStringLiteral("class “%1” · step 4 · seed 0 · sample 1 of ").arg(grids[1].classes[0])),
             qPrintable(viewer->caption()));
    const QImage grid(grids[1].path);
    QCOMPARE(viewer->shown_image().size(), QSize(32, 32));  // the demo's resolution
    QCOMPARE(viewer->shown_image(), grid.copy(2, 2, 32, 32));
    viewer->findChild<QPushButton*>(QStringLiteral("nextSample"))->click();
    QCOMPARE(viewer->current_cell(), 1);
    QVERIFY(viewer->caption().startsWith(QStringLiteral("class “%1”").arg(grids[1].classes[1])));
    QCOMPARE(viewer->shown_image(), grid.copy(36, 2, 32, 32));
    viewer->findChild<QPushButton*>(QStringLiteral("previousSample"))->click();
    viewer->findChild<QPushButton*>(QStringLiteral("previousSample"))->click();
    QCOMPARE(viewer->current_cell(), viewer->cell_count() - 1);  // wraps around
    // The same cell at every step, side by side; the earlier step shows step 2's grid.
    QCOMPARE(viewer->across_steps()->count(), 2);
    QCOMPARE(viewer->across_steps()->item(0)->text(), QStringLiteral("step 2"));
    QVERIFY(!viewer->findChild<QPushButton*>(QStringLiteral("laterStep"))->isEnabled());
    viewer->findChild<QPushButton*>(QStringLiteral("earlierStep"))->click();
    QCOMPARE(viewer->current_step(), 2);
    QCOMPARE(viewer->current_cell(), viewer->cell_count() - 1);
    QVERIFY(viewer->caption().contains(QStringLiteral("step 2")));
    QVERIFY(QDir::setCurrent(before));
  }
};

QTEST_MAIN(SamplesTest)
#include "tst_samples.moc"
