// The small things of the run toolbar and menus, through the window: Pause/Continue named apart from
// Resume from Checkpoint, Sample now answered on screen, switching presets without a save question, the
// Compare Runs view over two run folders, and the TensorBoard export of a run's metrics.
#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QMenuBar>
#include <QStatusBar>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <cstring>

#include "core/io/tensorboard_events.h"
#include "ui/compare_runs.h"
#include "ui/main_window.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/samples_gallery.h"
#include "ui/settings_panel.h"

using repa::ui::MainWindow;
using repa::ui::RunState;

namespace {

const QString kFakeWorker = QStringLiteral(REPA_UI_TEST_DIR "/fake_worker.py");

void write_metrics(const QString& dir, const std::vector<nlohmann::json>& rows) {
  QDir().mkpath(dir);
  QFile file(QDir(dir).filePath(QStringLiteral("metrics.jsonl")));
  QVERIFY(file.open(QIODevice::WriteOnly));
  for (const auto& row : rows) file.write(QByteArray::fromStdString(row.dump() + "\n"));
}

nlohmann::json row(int step, double loss) {
  nlohmann::json r;
  r["step"] = step;
  r["wall_time"] = 1000.0 + step;
  r["loss"] = loss;
  return r;
}

}  // namespace

class RunControlsTest : public QObject {
  Q_OBJECT

 private slots:
  void init() { qputenv("FAKE_WORKER_STEP_SECONDS", "0.02"); }

  void pause_continue_and_sample_now_feedback() {
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.show();
    auto* pause = window.findChild<QAction*>(QStringLiteral("actionPause"));
    auto* sample = window.findChild<QAction*>(QStringLiteral("actionSample"));
    QCOMPARE(pause->text(), QStringLiteral("Pause"));
    QCOMPARE(window.resume_from_checkpoint_action()->text(), QStringLiteral("Resume from Checkpoint"));
    nlohmann::json config;
    config["max_train_steps"] = 100000;
    config["output_dir"] = dir.path().toStdString();
    window.settings()->form()->set_config(config);
    QVERIFY(window.start_run());
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 10000);
    pause->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Paused, 5000);
    QCOMPARE(pause->text(), QStringLiteral("Continue"));
    pause->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 5000);
    QCOMPARE(pause->text(), QStringLiteral("Pause"));

    QVERIFY(sample->isEnabled());
    sample->trigger();
    QVERIFY(!sample->isEnabled());  // taken: no second request until the grid arrives
    QVERIFY2(window.statusBar()->currentMessage().startsWith(QStringLiteral("Drawing a sample grid after step")),
             qPrintable(window.statusBar()->currentMessage()));
    QTRY_COMPARE_WITH_TIMEOUT(window.gallery()->count(), 1, 5000);
    QVERIFY2(window.statusBar()->currentMessage().contains(QStringLiteral("is in the Samples tab")),
             qPrintable(window.statusBar()->currentMessage()));
    QVERIFY(sample->isEnabled());
    window.controller()->stop();
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 10000);
  }

  void switching_presets_does_not_ask_to_save() {
    MainWindow window;
    window.show();
    bool asked = false;
    QTimer watcher;
    connect(&watcher, &QTimer::timeout, [&asked] {
      if (QWidget* modal = QApplication::activeModalWidget()) {
        asked = true;
        modal->close();
      }
    });
    watcher.start(20);
    window.menuBar()->findChild<QAction*>(QStringLiteral("preset_demo"))->trigger();
    QVERIFY(!window.settings()->is_modified());
    window.menuBar()->findChild<QAction*>(QStringLiteral("preset_sit-b-2"))->trigger();
    QTest::qWait(100);
    QVERIFY(!asked);
    QVERIFY(window.settings()->document_title().contains(QStringLiteral("sit-b-2")));
    // Every preset loads unmodified, so going from one to the next never asks.
    for (QAction* action : window.menuBar()->findChildren<QAction*>()) {
      if (!action->objectName().startsWith(QStringLiteral("preset_"))) continue;
      action->trigger();
      QVERIFY2(!window.settings()->is_modified(), qPrintable(action->objectName()));
    }
    QTest::qWait(50);
    QVERIFY(!asked);
  }

  void compare_runs_overlays_two_folders() {
    QTemporaryDir dir;
    std::vector<nlohmann::json> a, b;
    for (int s = 1; s <= 50; ++s) {
      auto r = row(s, 1.0 / s);
      r["crepa_loss"] = -0.5;
      a.push_back(r);
    }
    for (int s = 1; s <= 30; ++s) b.push_back(row(s, 2.0 / s));
    for (int s = 20; s <= 30; ++s) b.push_back(row(s, 5.0));  // resumed from step 19: later lines win
    write_metrics(dir.filePath(QStringLiteral("run-a")), a);
    write_metrics(dir.filePath(QStringLiteral("run-b")), b);

    MainWindow window;
    QVERIFY(window.attach_run(dir.filePath(QStringLiteral("run-a"))));
    window.menuBar()->findChild<QAction*>(QStringLiteral("actionCompareRuns"))->trigger();
    repa::ui::CompareRunsDialog* compare = window.open_compare_runs();
    QVERIFY(compare->isVisible());
    QCOMPARE(compare->point_count(0), 50);  // the attached run is run A
    QVERIFY(compare->set_run(1, dir.filePath(QStringLiteral("run-b"))));
    QCOMPARE(compare->metrics(), (QStringList{QStringLiteral("crepa_loss"), QStringLiteral("loss")}));
    QCOMPARE(compare->findChild<QComboBox*>(QStringLiteral("compareMetric"))->currentText(), QStringLiteral("loss"));
    QCOMPARE(compare->point_count(1), 30);
    QCOMPARE(compare->plot()->graph(1)->data()->at(29)->value, 5.0);
    QCOMPARE(compare->plot()->graph(1)->data()->at(0)->value, 2.0);
    QCOMPARE(compare->plot()->graph(0)->name(), QStringLiteral("run-a"));
    QCOMPARE(compare->plot()->graph(1)->name(), QStringLiteral("run-b"));
    QVERIFY(compare->set_metric(QStringLiteral("crepa_loss")));
    QCOMPARE(compare->point_count(0), 50);
    QCOMPARE(compare->point_count(1), 0);
    QVERIFY(compare->message().contains(QStringLiteral("run-b does not report crepa_loss")));
    QVERIFY(!compare->set_run(1, dir.filePath(QStringLiteral("missing"))));
    QVERIFY(compare->message().contains(QStringLiteral("cannot read")));
  }

  void metrics_export_to_a_tensorboard_event_file() {
    QTemporaryDir dir;
    std::vector<nlohmann::json> rows;
    for (int s = 1; s <= 5; ++s) rows.push_back(row(s * 100, 0.5 * s));
    write_metrics(dir.filePath(QStringLiteral("run")), rows);
    MainWindow window;
    QString error;
    QVERIFY(window.export_tensorboard(dir.filePath(QStringLiteral("tb")), &error).isEmpty());  // no run yet
    QVERIFY(error.contains(QStringLiteral("No run")));
    QVERIFY(window.attach_run(dir.filePath(QStringLiteral("run"))));
    const QString path = window.export_tensorboard(dir.filePath(QStringLiteral("tb")), &error);
    QVERIFY2(!path.isEmpty(), qPrintable(error));
    QVERIFY(QFileInfo(path).fileName().startsWith(QStringLiteral("events.out.tfevents.1100.")));
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QByteArray bytes = file.readAll();
    // Records: length, masked CRC of it, data, masked CRC of the data.
    std::vector<QByteArray> records;
    qsizetype at = 0;
    while (at < bytes.size()) {
      uint64_t length = 0;
      uint32_t length_crc = 0, data_crc = 0;
      std::memcpy(&length, bytes.constData() + at, 8);
      std::memcpy(&length_crc, bytes.constData() + at + 8, 4);
      QCOMPARE(length_crc, repa::io::masked_crc32c(bytes.constData() + at, 8));
      const QByteArray data = bytes.mid(at + 12, static_cast<qsizetype>(length));
      std::memcpy(&data_crc, bytes.constData() + at + 12 + length, 4);
      QCOMPARE(data_crc, repa::io::masked_crc32c(data.constData(), static_cast<std::size_t>(data.size())));
      records.push_back(data);
      at += 12 + static_cast<qsizetype>(length) + 4;
    }
    QCOMPARE(records.size(), std::size_t{6});  // file_version + one per step
    QVERIFY(records[0].contains("brain.Event:2"));
    // The third step: Event{wall_time=1300, step=300, summary{value{tag "loss", simple_value 1.5}}}.
    const std::string third = records[3].toStdString();
    QCOMPARE(third, repa::io::encode_scalars_event(1300.0, 300, {{"loss", 1.5f}}));
    QCOMPARE(static_cast<uint8_t>(third[9]), uint8_t{0x10});  // field 2 (step), varint
    QCOMPARE(static_cast<uint8_t>(third[10]), uint8_t{(300 & 0x7F) | 0x80});
    QCOMPARE(static_cast<uint8_t>(third[11]), uint8_t{300 >> 7});
    QVERIFY(third.find("loss") != std::string::npos);
    float value = 0;
    std::memcpy(&value, third.data() + third.size() - 4, 4);
    QCOMPARE(value, 1.5f);
  }
};

QTEST_MAIN(RunControlsTest)
#include "tst_run_controls.moc"
