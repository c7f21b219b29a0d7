// Start on a run folder that already holds checkpoints, with the real worker: the window asks (continue from
// checkpoint-N / start fresh in a new run folder / cancel) instead of silently resuming, a continued run
// that ends at once keeps its curves, and an empty Resume From Checkpoint field means a fresh start.
#include <QApplication>
#include <QDir>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>

#include "ui/chart_board.h"
#include "ui/main_window.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/settings_panel.h"
#include "ui/start_dialog.h"

using repa::ui::MainWindow;
using repa::ui::RunState;

namespace {

constexpr int kTimeoutMs = 300000;  // the first demo start generates its dataset and fills caches

int points(MainWindow& window) {
  return window.charts()->chart(QStringLiteral("totalLoss"))->point_count(0);
}

struct Answer {
  bool asked = false;
  QString text;
  QString suggested_name;
  QString default_button;
};

// Answers the next start question: notes what it says, optionally types a run name, presses `button`.
void answer(Answer* seen, const QString& button, const QString& name = QString()) {
  QTimer::singleShot(0, [=] {
    auto* dialog = qobject_cast<QDialog*>(QApplication::activeModalWidget());
    QVERIFY(dialog);
    QCOMPARE(dialog->objectName(), QStringLiteral("startChoiceDialog"));
    seen->asked = true;
    seen->text = dialog->findChild<QLabel*>(QStringLiteral("startChoiceText"))->text();
    auto* edit = dialog->findChild<QLineEdit*>(QStringLiteral("newRunName"));
    seen->suggested_name = edit->text();
    for (auto* b : dialog->findChildren<QPushButton*>())
      if (b->isDefault()) seen->default_button = b->objectName();
    if (!name.isEmpty()) edit->setText(name);
    dialog->findChild<QPushButton*>(button)->click();
  });
}

void wait_for_end(MainWindow& window) {
  QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), kTimeoutMs);
}

}  // namespace

class StartChoiceTest : public QObject {
  Q_OBJECT

 private slots:
  void helpers() {
    QTemporaryDir dir;
    QDir(dir.path()).mkpath(QStringLiteral("demo/checkpoints/checkpoint-8"));
    QDir(dir.path()).mkpath(QStringLiteral("demo/checkpoints/checkpoint-12"));  // incomplete: no trainer_state
    QFile state(dir.filePath(QStringLiteral("demo/checkpoints/checkpoint-8/trainer_state.json")));
    QVERIFY(state.open(QIODevice::WriteOnly));
    state.close();
    qint64 step = 0;
    QCOMPARE(repa::ui::newest_checkpoint(dir.filePath(QStringLiteral("demo")), &step),
             dir.filePath(QStringLiteral("demo/checkpoints/checkpoint-8")));
    QCOMPARE(step, 8);
    QCOMPARE(repa::ui::suggest_run_name(dir.path(), QStringLiteral("demo")), QStringLiteral("demo-2"));
    QDir(dir.path()).mkpath(QStringLiteral("demo-2"));
    QCOMPARE(repa::ui::suggest_run_name(dir.path(), QStringLiteral("demo")), QStringLiteral("demo-3"));
    QCOMPARE(repa::ui::suggest_run_name(dir.path(), QStringLiteral("demo-2")), QStringLiteral("demo-3"));
    QCOMPARE(repa::ui::suggest_run_name(dir.path(), QStringLiteral("other")), QStringLiteral("other"));
    QCOMPARE(repa::ui::run_folder_of({{"output_dir", "runs"}, {"studio", {{"run_name", "x"}}}}, QStringLiteral("/w")),
             QStringLiteral("/w/runs/x"));
    QCOMPARE(repa::ui::run_folder_of({{"output_dir", "runs"}}, QStringLiteral("/w")), QString());  // timestamped
  }

  void start_asks_when_the_run_folder_holds_checkpoints() {
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(QStringLiteral(REPA_TRAIN_EXE));
    window.show();
    QVERIFY(window.settings()->load_preset(QStringLiteral("demo")));
    auto* form = window.settings()->form();
    form->set_value("output_dir", dir.path().toStdString());
    form->set_value("max_train_steps", 4);
    form->set_value("validation_step_interval", 100);
    form->set_value("studio.threads", 2);
    QVERIFY2(window.start_run(), qPrintable(window.settings()->problem_summary()));  // nothing there yet: no question
    wait_for_end(window);
    QCOMPARE(window.shown_state(), RunState::Finished);
    QCOMPARE(points(window), 4);

    // Cancel: nothing starts, the finished run's curves stay.
    Answer seen;
    answer(&seen, QStringLiteral("cancelButton"));
    QVERIFY(!window.start_run());
    QVERIFY(seen.asked);
    QVERIFY2(seen.text.contains(QStringLiteral("checkpoint-4")) && seen.text.contains(QStringLiteral("step 4")),
             qPrintable(seen.text));
    QVERIFY2(seen.text.contains(QStringLiteral("continuing ends at once")), qPrintable(seen.text));
    QCOMPARE(seen.suggested_name, QStringLiteral("demo-2"));
    QCOMPARE(seen.default_button, QStringLiteral("continueCheckpointButton"));  // the field says "latest"
    QVERIFY(!window.controller()->is_active());
    QCOMPARE(points(window), 4);

    // Continue in a new window (empty charts): the run ends at once, the history of the run is shown.
    {
      MainWindow second;
      second.controller()->set_program(QStringLiteral(REPA_TRAIN_EXE));
      second.show();
      second.settings()->form()->set_config(form->config());
      Answer again;
      answer(&again, QStringLiteral("continueCheckpointButton"));
      QVERIFY(second.start_run());
      QVERIFY(again.asked);
      QCOMPARE(points(second), 4);  // history of the continued run, before the worker says anything
      wait_for_end(second);
      QCOMPARE(second.shown_state(), RunState::Finished);
      QCOMPARE(points(second), 4);  // never wiped by a run that ends at once
      QCOMPARE(second.controller()->progress().step, 4);
    }

    // Fresh, under the suggested name: a new folder from step 1, the document names it.
    Answer fresh;
    answer(&fresh, QStringLiteral("startFreshButton"));
    QVERIFY(window.start_run());
    QCOMPARE(points(window), 0);
    wait_for_end(window);
    QCOMPARE(window.shown_state(), RunState::Finished);
    QCOMPARE(points(window), 4);
    QCOMPARE(window.charts()->chart(QStringLiteral("totalLoss"))->point(0, 0).step, 1.0);
    QCOMPARE(form->config()["studio"]["run_name"], nlohmann::json("demo-2"));
    QVERIFY(QFileInfo::exists(dir.filePath(QStringLiteral("demo-2/checkpoints/checkpoint-4/trainer_state.json"))));

    // An empty Resume From Checkpoint field means fresh: still asked (the folder has checkpoints), fresh is
    // the default, a taken name is refused in the dialog and a free one starts.
    form->set_value("resume_from_checkpoint", "");
    Answer empty;
    QTimer::singleShot(0, [&empty] {
      auto* dialog = qobject_cast<QDialog*>(QApplication::activeModalWidget());
      QVERIFY(dialog);
      for (auto* b : dialog->findChildren<QPushButton*>())
        if (b->isDefault()) empty.default_button = b->objectName();
      auto* edit = dialog->findChild<QLineEdit*>(QStringLiteral("newRunName"));
      empty.suggested_name = edit->text();
      edit->setText(QStringLiteral("demo"));
      dialog->findChild<QPushButton*>(QStringLiteral("startFreshButton"))->click();
      auto* problem = dialog->findChild<QLabel*>(QStringLiteral("newRunNameProblem"));
      QVERIFY(dialog->isVisible());
      QVERIFY(!problem->isHidden());
      empty.text = problem->text();
      edit->setText(QStringLiteral("third"));
      dialog->findChild<QPushButton*>(QStringLiteral("startFreshButton"))->click();
    });
    QVERIFY(window.start_run());
    QCOMPARE(empty.default_button, QStringLiteral("startFreshButton"));
    QCOMPARE(empty.suggested_name, QStringLiteral("demo-3"));
    QVERIFY2(empty.text.contains(QStringLiteral("exists already")), qPrintable(empty.text));
    wait_for_end(window);
    QCOMPARE(window.shown_state(), RunState::Finished);
    QVERIFY(QFileInfo::exists(dir.filePath(QStringLiteral("third/checkpoints/checkpoint-4/trainer_state.json"))));
  }
};

QTEST_MAIN(StartChoiceTest)
#include "tst_start_choice.moc"
