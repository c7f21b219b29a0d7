// Attaching to a run written by a headless worker: files followed as they grow, state from status.json,
// a stale heartbeat shown as a stall; the samples gallery newest first.
#include <QDateTime>
#include <QImage>
#include <QTemporaryDir>
#include <QtTest>

#include "ui/run_follower.h"
#include "ui/samples_gallery.h"

using repa::ui::RunFollower;
using repa::ui::RunState;
using repa::ui::SamplesGallery;

namespace {

void append(const QString& path, const std::string& text) {
  QFile file(path);
  QVERIFY(file.open(QIODevice::Append));
  file.write(QByteArray::fromStdString(text));
}

void write_status(const QString& dir, const char* state, double heartbeat) {
  QFile file(QDir(dir).filePath(QStringLiteral("status.json")));
  QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
  file.write(QByteArray::fromStdString(nlohmann::json({{"state", state}, {"heartbeat", heartbeat}, {"step", 3}}).dump()));
}

double now_s() { return static_cast<double>(QDateTime::currentMSecsSinceEpoch()) / 1000.0; }

}  // namespace

class RunFollowerTest : public QObject {
  Q_OBJECT

 private slots:
  void follows_growing_files_once_each() {
    QTemporaryDir dir;
    const QString events = dir.filePath(QStringLiteral("events.jsonl"));
    const QString metrics = dir.filePath(QStringLiteral("metrics.jsonl"));
    QFile config(dir.filePath(QStringLiteral("config.json")));
    QVERIFY(config.open(QIODevice::WriteOnly));
    config.write("{\"max_train_steps\": 10, \"crepa_enabled\": true}");
    config.close();
    append(events, "{\"type\":\"run_started\",\"schema\":1,\"device\":\"cpu\"}" "\n" "{\"type\":\"metrics\",\"step\":1,\"loss\":9}" "\n");
    append(metrics, "{\"step\":1,\"wall_time\":0.1,\"loss\":1.0}" "\n" "{\"type\":\"metrics\",\"step\":2,\"wall_time\":0.2,\"loss\":0.5}" "\n");
    write_status(dir.path(), "running", now_s());

    RunFollower follower;
    follower.set_poll_interval_ms(50);
    std::vector<double> losses;
    connect(&follower, &RunFollower::event_received, this, [&losses](const nlohmann::json& e) {
      if (e["type"] == "metrics") losses.push_back(e["loss"].get<double>());
    });
    QVERIFY(!follower.attach(dir.filePath(QStringLiteral("nope"))));
    QVERIFY(follower.attach(dir.path()));
    // metrics.jsonl is the one source of metrics: the copy in events.jsonl is not counted twice.
    QCOMPARE(losses, (std::vector<double>{1.0, 0.5}));
    QCOMPARE(follower.progress().device, QStringLiteral("cpu"));
    QCOMPARE(follower.progress().max_steps, 10);
    QCOMPARE(follower.state(), RunState::Running);

    // A line written in two pieces arrives once, whole.
    append(metrics, "{\"step\":3,\"wall_ti");
    QTest::qWait(150);
    QCOMPARE(losses.size(), size_t(2));
    append(metrics, "me\":0.3,\"loss\":0.25}" "\n");
    QTRY_COMPARE_WITH_TIMEOUT(losses.size(), size_t(3), 3000);
    QCOMPARE(losses.back(), 0.25);
    QCOMPARE(follower.progress().step, 3);

    append(events, "{\"type\":\"state\",\"state\":\"finished\"}" "\n");
    write_status(dir.path(), "finished", now_s());
    QTRY_COMPARE_WITH_TIMEOUT(follower.state(), RunState::Finished, 3000);
  }

  void an_old_heartbeat_is_a_stall() {
    QTemporaryDir dir;
    write_status(dir.path(), "running", now_s() - 120);
    RunFollower follower;
    follower.set_heartbeat_timeout_ms(30000);
    QVERIFY(follower.attach(dir.path()));
    QCOMPARE(follower.state(), RunState::Stalled);
    write_status(dir.path(), "running", now_s());
    follower.poll();
    QCOMPARE(follower.state(), RunState::Running);
  }

  void gallery_shows_newest_first_with_steps() {
    QTemporaryDir dir;
    QImage image(64, 32, QImage::Format_RGB32);
    image.fill(Qt::darkCyan);
    for (const char* name : {"step_000100.png", "step_002000.png", "step_000500.png"})
      QVERIFY(image.save(dir.filePath(QString::fromLatin1(name))));
    QFile broken(dir.filePath(QStringLiteral("step_000900.png")));  // still being written
    QVERIFY(broken.open(QIODevice::WriteOnly));
    broken.write("not yet");
    broken.close();

    SamplesGallery gallery;
    gallery.scan(dir.path());
    QCOMPARE(gallery.steps(), (QList<qint64>{2000, 500, 100}));
    QCOMPARE(gallery.item(0)->text(), QStringLiteral("step 2000"));
    gallery.scan(dir.path());  // known files are not added twice
    QCOMPARE(gallery.count(), 3);
    QVERIFY(image.save(dir.filePath(QStringLiteral("grid.png"))));
    gallery.add_sample(dir.filePath(QStringLiteral("grid.png")), 1000);  // the event's step wins
    QCOMPARE(gallery.steps(), (QList<qint64>{2000, 1000, 500, 100}));
    QCOMPARE(SamplesGallery::step_from_file_name(QStringLiteral("/x/samples-r3/step_0042.png")), 42);
  }
};

QTEST_MAIN(RunFollowerTest)
#include "tst_run_follower.moc"
