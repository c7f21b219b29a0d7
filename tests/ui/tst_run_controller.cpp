// The run controller against a scripted worker (tests/ui/fake_worker.py speaks the event protocol):
// events in, commands out, clean stop, crash, kill, non-zero exit, missing heartbeat.
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <csignal>

#include "ui/event_stream.h"
#include "ui/run_controller.h"
#include "ui/run_progress.h"

using repa::ui::EventStream;
using repa::ui::RunController;
using repa::ui::RunState;

namespace {

const QString kFakeWorker = QStringLiteral(REPA_UI_TEST_DIR "/fake_worker.py");

QString write_config(const QTemporaryDir& dir, int max_steps) {
  const QString path = dir.filePath(QStringLiteral("run.json"));
  QFile file(path);
  file.open(QIODevice::WriteOnly);
  const nlohmann::json config = {{"max_train_steps", max_steps}, {"output_dir", dir.path().toStdString()}};
  file.write(QByteArray::fromStdString(config.dump()));
  return path;
}

}  // namespace

class RunControllerTest : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    qunsetenv("FAKE_WORKER_MODE");
    qputenv("FAKE_WORKER_STEP_SECONDS", "0.02");
  }

  void event_stream_splits_lines_across_reads() {
    EventStream stream;
    auto items = stream.feed("{\"type\":\"metrics\",\"step\":1}\n{\"type\":\"heart");
    QCOMPARE(items.size(), size_t(1));
    QCOMPARE(items[0].event["step"].get<int>(), 1);
    items = stream.feed("beat\"}\nplain text line\n");
    QCOMPARE(items.size(), size_t(2));
    QCOMPARE(items[0].event["type"].get<std::string>(), std::string("heartbeat"));
    QVERIFY(items[1].event.is_null());
    QCOMPARE(items[1].text, QStringLiteral("plain text line"));
    items = stream.feed("{\"type\":\"log\"");  // a worker that died mid-line
    QVERIFY(items.empty());
    items = stream.flush();
    QCOMPARE(items.size(), size_t(1));
    QVERIFY(items[0].event.is_null());  // not valid JSON: shown as text, not lost
  }

  void commands_are_json_lines() {
    const nlohmann::json sent = nlohmann::json::parse(repa::ui::command_line(QStringLiteral("pause")).toStdString());
    QCOMPARE(sent["command"].get<std::string>(), std::string("pause"));
    QVERIFY(repa::ui::command_line(QStringLiteral("stop")).endsWith('\n'));
  }

  void progress_reads_eta_and_memory() {
    repa::ui::RunProgress p;
    p.update({{"type", "run_started"}, {"max_train_steps", 1000}, {"device", "cuda:0"}});
    p.update({{"type", "metrics"}, {"step", 400}, {"step_time_ms", 100.0}, {"memory_bytes", 3LL << 30}});
    QCOMPARE(p.device, QStringLiteral("cuda:0"));
    QCOMPARE(p.steps_per_sec, 10.0);
    QCOMPARE(p.eta_text(), QStringLiteral("1:00"));  // 600 steps at 10 it/s
    QCOMPARE(p.memory_text(), QStringLiteral("3.00 GiB"));
  }

  void progress_names_what_a_finished_run_wrote() {
    repa::ui::RunProgress p;
    p.update({{"type", "run_started"}, {"run_dir", "/r/full"}});
    p.step = 8;
    QVERIFY(!p.update({{"type", "state"}, {"state", "running"}, {"step", 8}}));  // other states name nothing
    QCOMPARE(repa::ui::state_message(RunState::Finished, p), QStringLiteral("Finished at step 8 — /r/full"));
    QVERIFY(p.update({{"type", "state"},
                      {"state", "finished"},
                      {"reason", "completed"},
                      {"step", 8},
                      {"pipeline_folder", "/r/full/pipeline"},
                      {"single_file", "/r/full/full.safetensors"}}));
    QCOMPARE(repa::ui::state_message(RunState::Finished, p),
             QStringLiteral("Finished at step 8 — /r/full — fine-tuned pipeline: /r/full/pipeline (single file: "
                            "/r/full/full.safetensors)"));
    QVERIFY(repa::ui::state_message(RunState::Stopped, p).endsWith(QStringLiteral("/r/full/full.safetensors)")));
    // A PixArt or Flux run writes no single file; a new run forgets the last one's outputs.
    p.update({{"type", "state"}, {"state", "finished"}, {"pipeline_folder", "/r/full/pipeline"}});
    QVERIFY(repa::ui::state_message(RunState::Finished, p).endsWith(QStringLiteral("pipeline: /r/full/pipeline")));
    p.update({{"type", "run_started"}, {"run_dir", "/r/next"}});
    QCOMPARE(repa::ui::state_message(RunState::Finished, p), QStringLiteral("Finished at step 8 — /r/next"));
  }

  void runs_pauses_resumes_and_stops_cleanly() {
    QTemporaryDir dir;
    RunController controller;
    controller.set_program(kFakeWorker);
    int metrics = 0;
    connect(&controller, &RunController::event_received, this, [&metrics](const nlohmann::json& e) {
      if (e.value("type", std::string()) == "metrics") ++metrics;
    });
    QSignalSpy failed(&controller, &RunController::failed);
    QVERIFY(controller.start(write_config(dir, 100000)));
    QTRY_COMPARE_WITH_TIMEOUT(controller.state(), RunState::Running, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(metrics >= 5, 10000);
    QCOMPARE(controller.progress().device, QStringLiteral("cpu"));
    QVERIFY(controller.progress().step >= 5);

    controller.pause();
    QTRY_COMPARE_WITH_TIMEOUT(controller.state(), RunState::Paused, 5000);
    QTest::qWait(150);
    const int while_paused = metrics;
    QTest::qWait(300);
    QCOMPARE(metrics, while_paused);  // paused means no steps
    controller.resume();
    QTRY_COMPARE_WITH_TIMEOUT(controller.state(), RunState::Running, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(metrics > while_paused + 3, 5000);

    controller.stop();
    QCOMPARE(controller.state(), RunState::Stopping);
    QTRY_VERIFY_WITH_TIMEOUT(!controller.is_active(), 10000);
    QCOMPARE(controller.state(), RunState::Stopped);
    QCOMPARE(failed.count(), 0);
    QVERIFY(QFile::exists(dir.filePath(QStringLiteral("checkpoint.json"))));
  }

  void runs_to_the_end() {
    QTemporaryDir dir;
    RunController controller;
    controller.set_program(kFakeWorker);
    QVERIFY(controller.start(write_config(dir, 20)));
    QTRY_VERIFY_WITH_TIMEOUT(!controller.is_active(), 15000);
    QCOMPARE(controller.state(), RunState::Finished);
    QCOMPARE(controller.progress().step, 20);
  }

  void a_killed_worker_is_reported_with_the_signal() {
    QTemporaryDir dir;
    RunController controller;
    controller.set_program(kFakeWorker);
    QSignalSpy failed(&controller, &RunController::failed);
    QVERIFY(controller.start(write_config(dir, 100000)));
    QTRY_VERIFY_WITH_TIMEOUT(controller.progress().step >= 3, 10000);
    controller.kill_worker();
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 10000);
    QCOMPARE(controller.state(), RunState::Failed);
    QVERIFY2(controller.failure_reason().contains(QStringLiteral("SIGKILL")), qPrintable(controller.failure_reason()));
  }

  void an_aborting_worker_is_reported_with_its_last_words() {
    QTemporaryDir dir;
    qputenv("FAKE_WORKER_MODE", "abort:5");
    RunController controller;
    controller.set_program(kFakeWorker);
    QSignalSpy failed(&controller, &RunController::failed);
    QVERIFY(controller.start(write_config(dir, 100000)));
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 10000);
    QVERIFY2(controller.failure_reason().contains(QStringLiteral("SIGABRT")), qPrintable(controller.failure_reason()));
    QVERIFY(controller.recent_log().join(QLatin1Char('\n')).contains(QStringLiteral("c10::Error")));
  }

  void a_worker_error_and_exit_code_are_reported() {
    QTemporaryDir dir;
    qputenv("FAKE_WORKER_MODE", "fail:4");
    RunController controller;
    controller.set_program(kFakeWorker);
    QSignalSpy failed(&controller, &RunController::failed);
    QVERIFY(controller.start(write_config(dir, 100000)));
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 10000);
    QCOMPARE(controller.state(), RunState::Failed);
    QVERIFY2(controller.failure_reason().contains(QStringLiteral("code 3")), qPrintable(controller.failure_reason()));
    QVERIFY(controller.failure_reason().contains(QStringLiteral("loss is NaN at step 4")));
  }

  void a_silent_worker_is_stalled_not_running() {
    QTemporaryDir dir;
    qputenv("FAKE_WORKER_MODE", "hang:3");
    RunController controller;
    controller.set_program(kFakeWorker);
    controller.set_heartbeat_timeout_ms(700);
    QVERIFY(controller.start(write_config(dir, 100000)));
    QTRY_COMPARE_WITH_TIMEOUT(controller.state(), RunState::Running, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(controller.state(), RunState::Stalled, 5000);
    controller.kill_worker();
    QTRY_VERIFY_WITH_TIMEOUT(!controller.is_active(), 5000);
    QCOMPARE(controller.state(), RunState::Failed);
  }

  void a_missing_program_fails_to_start_with_its_name() {
    QTemporaryDir dir;
    RunController controller;
    controller.set_program(dir.filePath(QStringLiteral("no-such-repa-train")));
    QSignalSpy failed(&controller, &RunController::failed);
    controller.start(write_config(dir, 10));
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 5000);
    QVERIFY(controller.failure_reason().contains(QStringLiteral("no-such-repa-train")));
  }
};

QTEST_MAIN(RunControllerTest)
#include "tst_run_controller.moc"
