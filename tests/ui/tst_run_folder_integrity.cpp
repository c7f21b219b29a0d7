// The window and a run folder: Start on a folder another worker holds says who holds it instead of launching;
// the follower skips torn or foreign lines in metrics.jsonl / events.jsonl with one warning.
#include <unistd.h>

#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "core/base/run_lock.h"
#include "ui/run_controller.h"
#include "ui/run_follower.h"

using repa::ui::RunController;
using repa::ui::RunFollower;

class RunFolderIntegrityTest : public QObject {
  Q_OBJECT

 private slots:
  void start_on_a_held_run_folder_names_the_holder() {
    QTemporaryDir dir;
    QVERIFY(QDir(dir.path()).mkpath(QStringLiteral("out/busy")));
    repa::RunLock held(dir.filePath(QStringLiteral("out/busy")).toStdString());
    const QString config = dir.filePath(QStringLiteral("run.json"));
    QFile file(config);
    QVERIFY(file.open(QIODevice::WriteOnly));
    const nlohmann::json json = {{"output_dir", dir.filePath(QStringLiteral("out")).toStdString()},
                                 {"studio", {{"run_name", "busy"}}}};
    file.write(QByteArray::fromStdString(json.dump()));
    file.close();

    RunController controller;
    controller.set_program(QStringLiteral("/bin/false"));  // never reached
    QSignalSpy failed(&controller, &RunController::failed);
    QVERIFY(!controller.start(config));
    QCOMPARE(failed.count(), 1);
    const QString reason = failed.at(0).at(0).toString();
    QVERIFY2(reason.contains(QStringLiteral("in use by another worker")), qPrintable(reason));
    QVERIFY2(reason.contains(QStringLiteral("pid %1").arg(::getpid())), qPrintable(reason));
    QVERIFY(!controller.is_active());
  }

  void follower_skips_bad_lines_with_one_warning() {
    QTemporaryDir dir;
    QFile metrics(dir.filePath(QStringLiteral("metrics.jsonl")));
    QVERIFY(metrics.open(QIODevice::WriteOnly));
    // A line torn by a full disk with the next run's first line glued to it, then good lines and more junk.
    metrics.write(
        "{\"type\":\"metrics\",\"step\":1,\"loss\":1.0}\n"
        "{\"type\":\"metrics\",\"step\":2,\"lo{\"type\":\"metrics\",\"step\":3,\"loss\":0.5}\n"
        "{\"type\":\"metrics\",\"step\":4,\"loss\":0.25}\n"
        "not json at all\n" +
        QByteArray(70000, '[') + "\n");
    metrics.close();

    RunFollower follower;
    std::vector<double> steps;
    QStringList logs;
    connect(&follower, &RunFollower::event_received, this, [&steps](const nlohmann::json& e) {
      if (e.value("type", std::string()) == "metrics") steps.push_back(e["step"].get<double>());
    });
    connect(&follower, &RunFollower::log_line, this, [&logs](const QString& line) { logs << line; });
    QVERIFY(follower.attach(dir.path()));
    QCOMPARE(steps, (std::vector<double>{1, 4}));
    QCOMPARE(logs.filter(QStringLiteral("skipped a line of metrics.jsonl")).size(), 1);
  }
};

QTEST_MAIN(RunFolderIntegrityTest)
#include "tst_run_folder_integrity.moc"
