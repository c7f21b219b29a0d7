// Followed lines with fields of the wrong type or numbers out of range (fuzzing findings F5 and F6): the
// event stream, the run progress and the follower skip or ignore them, never throw, and keep a sane state.
#include <QDateTime>
#include <QTemporaryDir>
#include <QtTest>

#include "ui/event_stream.h"
#include "ui/json_fields.h"
#include "ui/run_follower.h"
#include "ui/run_progress.h"

using repa::ui::EventStream;
using repa::ui::RunFollower;
using repa::ui::RunProgress;
using repa::ui::RunState;

namespace {

void write_file(const QString& path, const QByteArray& text) {
  QFile file(path);
  QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
  file.write(text);
}

}  // namespace

class HostileEventsTest : public QObject {
  Q_OBJECT

 private slots:
  void fields_are_read_by_type() {
    const auto j = nlohmann::json::parse(R"({"s":"x","n":3,"f":2.9,"big":1e20,"neg":-1e19,"u":18446744073709551615,
                                             "o":{},"b":true})");
    QCOMPARE(repa::ui::text_field(j, "s"), std::string("x"));
    QCOMPARE(repa::ui::text_field(j, "n", "fb"), std::string("fb"));
    QCOMPARE(repa::ui::text_field(j, "o"), std::string());
    QCOMPARE(repa::ui::text_field(nlohmann::json(5), "s", "fb"), std::string("fb"));
    QCOMPARE(repa::ui::int_field(j, "n").value_or(-7), qint64{3});
    QCOMPARE(repa::ui::int_field(j, "f").value_or(-7), qint64{2});
    QVERIFY(!repa::ui::int_field(j, "big"));
    QVERIFY(!repa::ui::int_field(j, "neg"));
    QVERIFY(!repa::ui::int_field(j, "u"));
    QVERIFY(!repa::ui::int_field(j, "s"));
    QVERIFY(!repa::ui::int_field(j, "b"));
    QVERIFY(!repa::ui::int_field(j, "missing"));
    QVERIFY(repa::ui::has_bad_type(nlohmann::json::parse(R"({"type":3})")));
    QVERIFY(!repa::ui::has_bad_type(nlohmann::json::parse(R"({"type":"log"})")));
  }

  void progress_ignores_hostile_lines() {
    // The reproducers of fuzz/corpus/jsonl_follower, and the other fields read from a followed line.
    const QByteArray text =
        "{\"type\":\"run_started\",\"max_train_steps\":100,\"device\":\"cpu\"}\n"
        "{\"type\":\"metrics\",\"step\":5,\"memory_bytes\":1048576}\n"
        "{\"type\": 3}\n"
        "{\"type\":[\"metrics\"],\"step\":9}\n"
        "{\"type\": \"state\", \"state\": {}}\n"
        "{\"type\":\"state\",\"state\":\"finished\",\"reason\":7}\n"
        "{\"type\": \"metrics\", \"step\": 1e+20, \"wall_time\": 1e+308, \"memory_bytes\": 1e+30}\n"
        "{\"type\":\"metrics\",\"step\":\"6\"}\n"
        "{\"type\":\"metrics\",\"step\":-1e300}\n"
        "{\"type\":\"heartbeat\",\"step\":1e19,\"memory_bytes\":\"x\"}\n"
        "{\"type\":\"run_started\",\"max_train_steps\":\"x\",\"device\":4,\"run_dir\":{},\"lora\":{\"adapter_file\":1}}"
        "\n"
        "{\"type\":\"checkpoint\",\"path\":5}\n"
        "{\"type\":\"error\",\"message\":[]}\n";
    EventStream stream;
    RunProgress progress;
    RunState state = RunState::Running;
    int updates = 0;
    std::vector<repa::ui::StreamItem> items = stream.feed(text);
    for (auto& item : stream.flush()) items.push_back(item);
    QCOMPARE(static_cast<int>(items.size()), 13);
    for (const auto& item : items) {
      QVERIFY(item.event.is_object());
      if (progress.update(item.event)) ++updates;
      state = repa::ui::state_of(item.event, state);
    }
    // run_started twice, metrics step 5, the state lines, heartbeat, checkpoint and error count as updates;
    // the metrics lines with no usable step do not.
    QCOMPARE(updates, 6);
    QCOMPARE(progress.step, qint64{5});
    QCOMPARE(progress.max_steps, qint64{100});
    QCOMPARE(progress.memory_bytes, qint64{1048576});
    QCOMPARE(progress.device, QString());
    QCOMPARE(progress.last_checkpoint, QString());
    QCOMPARE(progress.last_error, QString());
    QCOMPARE(progress.memory_text(), QStringLiteral("1 MiB"));
    // {} is no state; "finished" with a reason that is no string is a plain finish.
    QCOMPARE(state, RunState::Finished);
    QCOMPARE(repa::ui::state_of(nlohmann::json::parse(R"({"state":{}})"), RunState::Paused), RunState::Paused);
  }

  void follower_skips_hostile_lines_with_one_warning() {
    QTemporaryDir dir;
    write_file(dir.filePath(QStringLiteral("events.jsonl")),
               "{\"type\":\"run_started\",\"max_train_steps\":10}\n"
               "{\"type\": 3}\n"
               "{\"type\":{},\"message\":\"x\"}\n"
               "{\"type\": \"state\", \"state\": {}}\n"
               "{\"type\":\"log\",\"message\":12}\n"
               "{\"type\":\"state\",\"state\":\"running\"}\n");
    write_file(dir.filePath(QStringLiteral("metrics.jsonl")),
               "{\"step\":1e+20,\"memory_bytes\":1e+30}\n"
               "{\"type\":5,\"step\":4}\n"
               "{\"step\":3,\"loss\":0.5}\n");
    // status.json of the wrong types: no state, a heartbeat that is an object, a pid that is a string.
    write_file(dir.filePath(QStringLiteral("status.json")),
               "{\"state\":{},\"heartbeat\":{},\"pid\":\"1\",\"step\":[]}");
    RunFollower follower;
    follower.set_poll_interval_ms(50);
    QStringList logs;
    int events = 0;
    connect(&follower, &RunFollower::log_line, this, [&logs](const QString& line) { logs << line; });
    connect(&follower, &RunFollower::event_received, this, [&events](const nlohmann::json&) { ++events; });
    QVERIFY(follower.attach(dir.path()));
    QCOMPARE(follower.progress().step, qint64{3});
    QCOMPARE(follower.progress().max_steps, qint64{10});
    QCOMPARE(follower.progress().memory_bytes, qint64{-1});
    QCOMPARE(follower.state(), RunState::Running);
    // run_started, state {}, log, state running, the 1e20 metrics line (no usable step), step 3; two lines skipped
    // in events.jsonl and one in metrics.jsonl (its type 5 is no "metrics"), said once.
    QCOMPARE(events, 6);
    const QStringList warnings = logs.filter(QStringLiteral("warning: skipped"));
    QCOMPARE(warnings.size(), 1);
    QVERIFY2(warnings.front().contains(QStringLiteral("events.jsonl")), qPrintable(warnings.front()));
    QVERIFY(logs.contains(QString()));  // the log line whose message is 12 shows as an empty line
  }
};

QTEST_GUILESS_MAIN(HostileEventsTest)
#include "tst_hostile_events.moc"
