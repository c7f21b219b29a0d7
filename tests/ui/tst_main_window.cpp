// The main window driving a worker end to end, offscreen: Start, points in the charts, Pause/Resume, Stop,
// a clean end; a killed worker reported with Resume offered; attach to a headless run directory.
// The scripted worker (fake_worker.py) stands in for repa-train so these run in a second.
#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QDateTime>
#include <QDir>
#include <QProcess>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <csignal>

#include "ui/chart_board.h"
#include "ui/failure_panel.h"
#include "ui/main_window.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/run_follower.h"
#include "ui/samples_gallery.h"
#include "ui/settings_panel.h"

using repa::ui::MainWindow;
using repa::ui::RunState;

namespace {

const QString kFakeWorker = QStringLiteral(REPA_UI_TEST_DIR "/fake_worker.py");

int total_points(MainWindow& window) {
  return window.charts()->chart(QStringLiteral("totalLoss"))->point_count(0);
}

}  // namespace

class MainWindowTest : public QObject {
  Q_OBJECT

 private slots:
  void init() { qputenv("FAKE_WORKER_STEP_SECONDS", "0.02"); qunsetenv("FAKE_WORKER_MODE"); }

  void start_pause_resume_stop() {
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    window.settings()->form()->set_config(
        {{"max_train_steps", 100000}, {"output_dir", dir.path().toStdString()}, {"crepa_enabled", true}});
    QVERIFY2(window.start_run(), qPrintable(window.settings()->problem_summary()));
    QVERIFY(!window.start_action()->isEnabled());
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(total_points(window) >= 10, 10000);
    QCOMPARE(window.state_text(), QStringLiteral("running"));
    QVERIFY(window.findChild<QLabel*>(QStringLiteral("statusStep"))->text().startsWith(QStringLiteral("step ")));
    QCOMPARE(window.findChild<QLabel*>(QStringLiteral("statusDevice"))->text(), QStringLiteral("cpu"));
    QVERIFY(window.findChild<QLabel*>(QStringLiteral("statusSpeed"))->text().endsWith(QStringLiteral("it/s")));

    window.findChild<QAction*>(QStringLiteral("actionPause"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Paused, 5000);
    window.findChild<QAction*>(QStringLiteral("actionPause"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 5000);

    window.findChild<QAction*>(QStringLiteral("actionSample"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.gallery()->count(), 1, 5000);

    window.findChild<QAction*>(QStringLiteral("actionStop"))->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 10000);
    QCOMPARE(window.shown_state(), RunState::Stopped);
    QVERIFY(window.failure_panel()->isHidden());
    QVERIFY(window.start_action()->isEnabled());
    QVERIFY(window.log_view()->toPlainText().contains(QStringLiteral("command stop")));
  }

  void a_killed_worker_is_reported_and_resumed() {
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.show();
    window.settings()->form()->set_config({{"max_train_steps", 100000}, {"output_dir", dir.path().toStdString()}});
    QVERIFY(window.start_run());
    QTRY_VERIFY_WITH_TIMEOUT(total_points(window) >= 25, 10000);  // past the checkpoint of step 20
    ::kill(static_cast<pid_t>(window.controller()->process_id()), SIGKILL);
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Failed, 10000);
    QVERIFY(window.isVisible());
    QVERIFY(!window.failure_panel()->isHidden());
    QVERIFY2(window.failure_panel()->reason().contains(QStringLiteral("SIGKILL")), qPrintable(window.failure_panel()->reason()));
    QVERIFY(!window.failure_panel()->details().isEmpty());  // the last log lines
    QVERIFY(window.resume_from_checkpoint_action()->isEnabled());
    const int before = total_points(window);

    window.failure_panel()->resume_button()->click();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 10000);
    QVERIFY(window.failure_panel()->isHidden());
    // The resumed run continues the same curve from its checkpoint instead of starting an empty one.
    QTRY_VERIFY_WITH_TIMEOUT(window.controller()->progress().step > before + 3, 10000);
    const repa::ui::MetricChart* total = window.charts()->chart(QStringLiteral("totalLoss"));
    QCOMPARE(total->point(0, 0).step, 1.0);
    for (int i = 1; i < total->point_count(0); ++i) QVERIFY(total->point(0, i).step > total->point(0, i - 1).step);
    window.controller()->stop();
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 10000);
  }

  void the_status_bar_never_shows_a_stale_state() {
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.show();
    auto* speed = window.findChild<QLabel*>(QStringLiteral("statusSpeed"));
    auto* eta = window.findChild<QLabel*>(QStringLiteral("statusEta"));
    auto* step = window.findChild<QLabel*>(QStringLiteral("statusStep"));
    const auto message = [&window] { return window.findChild<QLabel*>(QStringLiteral("statusLine"))->text(); };
    QVERIFY(message().contains(QStringLiteral("no run")));
    window.settings()->form()->set_config({{"max_train_steps", 100000}, {"output_dir", dir.path().toStdString()}});
    QVERIFY(window.start_run());
    QTRY_VERIFY_WITH_TIMEOUT(total_points(window) >= 25, 10000);  // past the checkpoint of step 20
    QVERIFY2(message().startsWith(QStringLiteral("Training")), qPrintable(message()));
    QVERIFY(!speed->text().isEmpty());
    QVERIFY(eta->text().startsWith(QStringLiteral("ETA")));

    // Paused: no speed, no ETA; the step stays.
    window.findChild<QAction*>(QStringLiteral("actionPause"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Paused, 5000);
    QVERIFY(speed->text().isEmpty());
    QVERIFY(eta->text().isEmpty());
    QVERIFY(step->text().startsWith(QStringLiteral("step ")));
    QVERIFY2(message().startsWith(QStringLiteral("Paused at step")), qPrintable(message()));
    window.findChild<QAction*>(QStringLiteral("actionPause"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(!speed->text().isEmpty(), 5000);

    // Killed, then resumed: the failure's words leave the status bar once the resumed run trains.
    ::kill(static_cast<pid_t>(window.controller()->process_id()), SIGKILL);
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Failed, 10000);
    QVERIFY(message().contains(QStringLiteral("SIGKILL")));
    QVERIFY(speed->text().isEmpty() && eta->text().isEmpty());
    QVERIFY(window.resume_from_checkpoint());
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 10000);
    QVERIFY2(!message().contains(QStringLiteral("SIGKILL")), qPrintable(message()));
    QVERIFY(message().startsWith(QStringLiteral("Training")));

    // Stopped: no speed or ETA left behind.
    window.findChild<QAction*>(QStringLiteral("actionStop"))->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 10000);
    QCOMPARE(window.shown_state(), RunState::Stopped);
    QVERIFY(speed->text().isEmpty() && eta->text().isEmpty());
    QVERIFY2(message().startsWith(QStringLiteral("Stopped at step")), qPrintable(message()));

    // A start that fails at once shows no step, speed or ETA of the run before.
    window.controller()->set_program(QStringLiteral("/nonexistent/repa-train"));
    QVERIFY(window.start_run());
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Failed, 10000);
    QVERIFY2(step->text().isEmpty(), qPrintable(step->text()));
    QVERIFY(speed->text().isEmpty() && eta->text().isEmpty());
    QVERIFY(message().contains(QStringLiteral("could not start")));
  }

  void invalid_settings_block_start() {
    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.settings()->form()->set_config({{"crepa_enabled", true}, {"crepa_lambda", -3.0}});
    QVERIFY(!window.start_run());
    QVERIFY(!window.controller()->is_active());
    QVERIFY(!window.settings()->form()->problem_text("crepa_lambda").isEmpty());
  }

  void screenshot_during_a_run() {
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.resize(1600, 1000);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    window.settings()->form()->set_config({{"max_train_steps", 150},
                                           {"output_dir", dir.path().toStdString()},
                                           {"crepa_enabled", true},
                                           {"crepa_scheduler", "cosine"},
                                           {"crepa_similarity_threshold", 0.9}});
    QVERIFY(window.start_run());
    QTRY_VERIFY_WITH_TIMEOUT(total_points(window) >= 120, 15000);
    window.findChild<QAction*>(QStringLiteral("actionSample"))->trigger();
    QTest::qWait(300);
    QDir().mkpath(QStringLiteral(REPA_SCREENSHOT_DIR));
    const QString path = QStringLiteral(REPA_SCREENSHOT_DIR "/main_window.png");
    const QPixmap shot = window.grab();
    QVERIFY(shot.width() >= 1200);
    QVERIFY(shot.save(path));
    QVERIFY(QFileInfo(path).size() > 20000);
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 15000);
  }

  void attaches_to_a_headless_run() {
    QTemporaryDir dir;
    QFile metrics(dir.filePath(QStringLiteral("metrics.jsonl")));
    QVERIFY(metrics.open(QIODevice::WriteOnly));
    for (int s = 1; s <= 50; ++s)
      metrics.write(QByteArray::fromStdString(
          nlohmann::json({{"type", "metrics"}, {"step", s}, {"wall_time", s * 0.1}, {"loss", 1.0 / s}}).dump() + "\n"));
    metrics.close();
    QDir(dir.path()).mkpath(QStringLiteral("samples"));
    QImage grid(32, 32, QImage::Format_RGB32);
    grid.fill(Qt::gray);
    QVERIFY(grid.save(dir.filePath(QStringLiteral("samples/step_000040.png"))));

    MainWindow window;
    QVERIFY(window.attach_run(dir.path()));
    QCOMPARE(total_points(window), 50);
    QCOMPARE(window.gallery()->count(), 1);
    QVERIFY(metrics.open(QIODevice::Append));
    metrics.write("{\"type\":\"metrics\",\"step\":51,\"wall_time\":5.1,\"loss\":0.01}" "\n");
    metrics.close();
    QTRY_COMPARE_WITH_TIMEOUT(total_points(window), 51, 5000);
  }

  void attach_shows_the_runs_config_and_a_dead_worker_and_resumes_it() {
    QTemporaryDir dir;
    QVERIFY(QDir(dir.path()).mkpath(QStringLiteral("headless/checkpoints/checkpoint-20")));
    const QString run = dir.filePath(QStringLiteral("headless"));
    const auto write = [](const QString& path, const std::string& text) {
      QFile file(path);
      QVERIFY(file.open(QIODevice::WriteOnly));
      file.write(QByteArray::fromStdString(text));
    };
    nlohmann::json config;
    config["max_train_steps"] = 100000;
    config["crepa_enabled"] = true;
    config["crepa_lambda"] = 0.7;
    config["output_dir"] = "somewhere/else";  // where the headless worker ran, not this folder
    write(run + QStringLiteral("/config.json"), config.dump());
    write(run + QStringLiteral("/checkpoints/checkpoint-20/trainer_state.json"), "{}");
    std::string metrics;
    for (int s = 1; s <= 25; ++s) metrics += nlohmann::json({{"step", s}, {"loss", 1.0 / s}}).dump() + "\n";
    write(run + QStringLiteral("/metrics.jsonl"), metrics);
    // The pid of a worker that has ended: a process started and waited for here.
    QProcess gone;
    gone.start(QStringLiteral("sleep"), {QStringLiteral("0.2")});
    QVERIFY(gone.waitForStarted());
    const qint64 pid = gone.processId();
    QVERIFY(gone.waitForFinished());
    QVERIFY(!repa::ui::process_exists(pid));
    QVERIFY(repa::ui::process_exists(QCoreApplication::applicationPid()));
    nlohmann::json status;
    status["state"] = "running";
    status["pid"] = pid;
    status["step"] = 25;
    status["heartbeat"] = static_cast<double>(QDateTime::currentMSecsSinceEpoch()) / 1000.0;
    write(run + QStringLiteral("/status.json"), status.dump());

    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.show();
    nlohmann::json document;
    document["crepa_enabled"] = true;
    document["crepa_lambda"] = 0.3;  // the unrelated open document
    window.settings()->form()->set_config(document);
    QVERIFY(window.attach_run(run));
    QCOMPARE(window.settings()->form()->config().value("crepa_lambda", 0.0), 0.7);
    QVERIFY(!window.settings()->form()->editor("crepa_lambda")->isEnabled());  // read-only
    QVERIFY(window.windowTitle().contains(QStringLiteral("read-only")));
    QCOMPARE(total_points(window), 25);
    // Not "stalled": the pid says the worker died.
    QCOMPARE(window.shown_state(), RunState::Failed);
    QVERIFY(!window.failure_panel()->isHidden());
    QVERIFY2(window.failure_panel()->reason().contains(QStringLiteral("pid %1 is gone").arg(pid)) ||
                 window.failure_panel()->reason().contains(QStringLiteral("(pid %1) is gone").arg(pid)),
             qPrintable(window.failure_panel()->reason()));
    QVERIFY(window.findChild<QLabel*>(QStringLiteral("statusLine"))->text().contains(QStringLiteral("is gone")));
    QVERIFY(window.resume_from_checkpoint_action()->isEnabled());

    // Resume: the run's own config, in its own folder, from its latest checkpoint.
    window.failure_panel()->resume_button()->click();
    QTRY_VERIFY_WITH_TIMEOUT(window.controller()->is_active(), 5000);
    QFile launched(window.controller()->config_path());
    QVERIFY(launched.open(QIODevice::ReadOnly));
    const nlohmann::json used = nlohmann::json::parse(launched.readAll().toStdString());
    QCOMPARE(used.value("crepa_lambda", 0.0), 0.7);
    QCOMPARE(QString::fromStdString(used.value("output_dir", std::string())), dir.path());
    QCOMPARE(QString::fromStdString(used["studio"].value("run_name", std::string())), QStringLiteral("headless"));
    QCOMPARE(QString::fromStdString(used.value("resume_from_checkpoint", std::string())), QStringLiteral("latest"));
    QVERIFY(window.settings()->form()->editor("crepa_lambda")->isEnabled());  // editable again
    QCOMPARE(total_points(window), 25);  // the attached history stays for the resumed run
    window.controller()->stop();
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 10000);
  }

  void start_lists_the_options_the_trainer_ignores() {
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(kFakeWorker);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    window.settings()->form()->set_config({{"max_train_steps", 100000},
                                           {"output_dir", dir.path().toStdString()},
                                           {"crepa_enabled", true},
                                           {"xm_enabled", true},
                                           {"xm_candidate_count", 2},
                                           {"layersync_enabled", true}});
    // Answers the dialog Start opens: records its list, then presses the named button.
    QString listed;
    const auto answer = [&listed](const QString& button) {
      QTimer::singleShot(0, [&listed, button] {
        auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
        QVERIFY(box);
        QCOMPARE(box->objectName(), QStringLiteral("ignoredOptionsDialog"));
        listed = box->informativeText();
        box->findChild<QPushButton*>(button)->click();
      });
    };
    answer(QStringLiteral("cancelButton"));
    QVERIFY(!window.start_run());
    QVERIFY(!window.controller()->is_active());
    QCOMPARE(listed, QStringLiteral("• xm_enabled = true: exported to SimpleTuner; not used by the studio's trainer\n"
                                    "• xm_candidate_count = 2: exported to SimpleTuner; not used by the studio's "
                                    "trainer\n"
                                    "• layersync_enabled = true: exported to SimpleTuner; not used by the studio's "
                                    "trainer"));
    answer(QStringLiteral("continueButton"));
    QVERIFY(window.start_run());
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Running, 10000);
    window.findChild<QAction*>(QStringLiteral("actionStop"))->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 10000);

    // A backbone teacher blocks Start as validator errors do, before any dialog.
    window.settings()->form()->set_config({{"crepa_enabled", true}, {"crepa_feature_source", "backbone"}});
    bool dialog = false;
    QTimer::singleShot(0, [&dialog] {
      if (auto* box = QApplication::activeModalWidget()) {
        dialog = true;
        box->close();
      }
    });
    QVERIFY(!window.start_run());
    QTest::qWait(50);
    QVERIFY(!dialog);
    QVERIFY(window.settings()->form()->problem_text("crepa_feature_source").contains(QStringLiteral("refused")));
  }
};

QTEST_MAIN(MainWindowTest)
#include "tst_main_window.moc"
