// LoRA in the window: the Model panel shows rank, alpha, targets, format, DoRA and init once model_type is lora
// (and hides them for full training); a LoRA demo run driven by the window ends with its adapter file named in
// the status line, and the file is there.
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>

#include "ui/main_window.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/run_progress.h"
#include "ui/settings_panel.h"

using repa::ui::MainWindow;
using repa::ui::OptionForm;
using repa::ui::Panel;
using repa::ui::RunState;

namespace {

const std::vector<std::string> kLoraKeys = {"lora_rank",   "lora_alpha", "peft_lora_target_modules",
                                            "lora_format", "use_dora",   "lora_init_type"};

}  // namespace

class LoraPanelTest : public QObject {
  Q_OBJECT

 private slots:
  void lora_fields_sit_in_the_model_panel_and_follow_model_type() {
    OptionForm form;
    form.set_config({{"model_type", "full"}});
    const auto model_keys = form.field_keys(Panel::Model);
    for (const auto& key : kLoraKeys) {
      QVERIFY2(std::find(model_keys.begin(), model_keys.end(), key) != model_keys.end(), key.c_str());
      QVERIFY2(!form.is_shown(key), key.c_str());
    }
    form.set_value("model_type", "lora");
    for (const auto& key : kLoraKeys) {
      QVERIFY2(form.is_shown(key), key.c_str());
      QVERIFY(form.editor(key) != nullptr);
    }
    QVERIFY(!form.label("lora_rank")->text().isEmpty());
    // DoRA, the init and the targets belong to the standard LoRA type only (SimpleTuner's rule).
    form.set_value("lora_type", "lycoris");
    QVERIFY(!form.is_shown("use_dora"));
    QVERIFY(!form.is_shown("peft_lora_target_modules"));
    QVERIFY(form.is_shown("lora_rank"));
  }

  void the_status_line_names_the_adapter_after_a_lora_run() {
    // The line itself, from the events alone.
    repa::ui::RunProgress progress;
    progress.update({{"type", "run_started"},
                     {"run_dir", "/r/x"},
                     {"step", 0},
                     {"lora", {{"rank", 4}, {"adapter_file", "/r/x/pytorch_lora_weights.safetensors"}}}});
    progress.step = 6;
    QVERIFY(repa::ui::state_message(RunState::Finished, progress)
                .endsWith(QStringLiteral("LoRA adapter: /r/x/pytorch_lora_weights.safetensors")));
    progress.update({{"type", "run_started"}, {"run_dir", "/r/y"}, {"lora", nullptr}});
    QVERIFY(!repa::ui::state_message(RunState::Finished, progress).contains(QStringLiteral("LoRA")));

    // The window driving the real worker.
    QTemporaryDir dir;
    MainWindow window;
    window.controller()->set_program(QStringLiteral(REPA_TRAIN_EXE));
    window.resize(1400, 900);
    window.show();
    QVERIFY(window.settings()->load_preset(QStringLiteral("demo")));
    auto* form = window.settings()->form();
    form->set_value("output_dir", dir.path().toStdString());
    form->set_value("max_train_steps", 2);
    form->set_value("validation_step_interval", 0);
    form->set_value("studio.threads", 1);
    form->set_value("model_type", "lora");
    form->set_value("lora_rank", 4);
    QVERIFY(form->is_shown("lora_rank"));
    QVERIFY2(window.start_run(), qPrintable(window.settings()->problem_summary()));
    QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->is_active(), 300000);
    QCOMPARE(window.shown_state(), RunState::Finished);
    const QString adapter = window.controller()->progress().adapter_file;
    QVERIFY(adapter.endsWith(QStringLiteral("/pytorch_lora_weights.safetensors")));
    QVERIFY(adapter.startsWith(dir.path()));
    QVERIFY(QFileInfo::exists(adapter));
    QCOMPARE(window.controller()->progress().lora.value("rank", 0), 4);
    auto* line = window.findChild<QLabel*>(QStringLiteral("statusLine"));
    QVERIFY(line != nullptr);
    QVERIFY2(line->text().contains(QStringLiteral("LoRA adapter: ") + adapter), qPrintable(line->text()));
  }
};

QTEST_MAIN(LoraPanelTest)
#include "tst_lora_panel.moc"
