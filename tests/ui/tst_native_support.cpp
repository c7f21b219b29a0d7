// Presets the studio's worker cannot train natively (SimpleTuner model families): marked in the Presets
// menu, explained under Model Family with an export button, Start disabled with the reason; and a worker
// that exits with code 2 (bad config) is never offered Resume.
#include <QAction>
#include <QDir>
#include <QApplication>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QPushButton>
#include <QStatusBar>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>

#include "ui/failure_panel.h"
#include "ui/main_window.h"
#include "ui/native_support.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/settings_panel.h"

using repa::ui::MainWindow;
using repa::ui::RunState;

class NativeSupportTest : public QObject {
  Q_OBJECT

 private slots:
  void family_presets_are_marked_and_cannot_start() {
    MainWindow window;
    window.show();
    QAction* sdxl = window.menuBar()->findChild<QAction*>(QStringLiteral("preset_hidream"));
    QAction* flux = window.menuBar()->findChild<QAction*>(QStringLiteral("preset_sana"));
    QAction* demo = window.menuBar()->findChild<QAction*>(QStringLiteral("preset_demo"));
    QVERIFY(sdxl && flux && demo);
    QCOMPARE(sdxl->text(), QStringLiteral("hidream") + repa::ui::export_only_preset_suffix());
    QVERIFY(flux->text().endsWith(repa::ui::export_only_preset_suffix()));
    QCOMPARE(demo->text(), QStringLiteral("demo"));  // trains here
    QVERIFY(sdxl->toolTip().contains(QStringLiteral("Llama-3.1-8B text encoder")));

    auto* banner = window.native_support()->banner();
    sdxl->trigger();  // the menu entry itself (a fresh document: nothing to save)
    QCOMPARE(window.settings()->form()->config()["model_family"], nlohmann::json("hidream"));
    QVERIFY(!window.start_action()->isEnabled());
    QVERIFY2(window.start_action()->toolTip().contains(QStringLiteral("model_family 'hidream'")),
             qPrintable(window.start_action()->toolTip()));
    QVERIFY(window.statusBar()->currentMessage().startsWith(QStringLiteral("Start is off: model_family 'hidream'")));
    QVERIFY(!window.start_run());
    QVERIFY(!window.controller()->is_active());
    // The reason sits in the Model tab, under Model Family.
    QTabWidget* tabs = window.settings()->form()->tabs();
    QWidget* model_tab = nullptr;
    for (int i = 0; i < tabs->count(); ++i)
      if (tabs->tabText(i).contains(QStringLiteral("Model"))) model_tab = tabs->widget(i);
    QVERIFY(model_tab && model_tab->isAncestorOf(banner));
    tabs->setCurrentWidget(model_tab);
    QVERIFY(banner->isVisible());
    QVERIFY(banner->findChild<QLabel*>(QStringLiteral("nativeSupportText"))
                ->text()
                .contains(QStringLiteral("SimpleTuner")));

    // The banner's button exports for SimpleTuner.
    QTemporaryDir out;
    QTimer::singleShot(0, [&out] {
      auto* dialog = qobject_cast<QFileDialog*>(QApplication::activeModalWidget());
      QVERIFY(dialog);
      dialog->setDirectory(out.path());
      dialog->selectFile(out.path());
      QMetaObject::invokeMethod(dialog, "accept");
    });
    QSignalSpy exported(window.settings(), &repa::ui::SettingsPanel::export_finished);
    window.native_support()->export_button()->click();
    QVERIFY(exported.wait(60000));
    QVERIFY2(exported.at(0).at(0).toBool(), qPrintable(exported.at(0).at(1).toString()));
    QVERIFY(QFileInfo::exists(out.filePath(QStringLiteral("config.json"))));

    // A config the worker trains turns Start back on and hides the reason.
    window.settings()->form()->set_value("model_family", nullptr);
    QVERIFY(window.start_action()->isEnabled());
    QVERIFY(banner->isHidden());
    QVERIFY(window.statusBar()->currentMessage().isEmpty());
  }

  void a_family_trained_here_says_before_start_what_folder_it_needs() {
    MainWindow window;
    window.show();
    QAction* sdxl = window.menuBar()->findChild<QAction*>(QStringLiteral("preset_sdxl"));
    QVERIFY(sdxl);
    QCOMPARE(sdxl->text(), QStringLiteral("sdxl"));  // trains here
    sdxl->trigger();
    QVERIFY(!window.start_action()->isEnabled());
    auto* text = window.native_support()->banner()->findChild<QLabel*>(QStringLiteral("nativeSupportText"));
    QVERIFY2(text->text().contains(QStringLiteral("repa-train fetch stabilityai/stable-diffusion-xl-base-1.0")),
             qPrintable(text->text()));
    QVERIFY(text->text().contains(QStringLiteral("Before Start")));
    QVERIFY(window.native_support()->export_button()->isHidden());
    // A folder with the family's components turns Start on.
    QTemporaryDir pipe;
    for (const char* sub : {"unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"})
      QVERIFY(QDir(pipe.path()).mkpath(QString::fromLatin1(sub)));
    window.settings()->form()->set_value("pretrained_model_name_or_path", pipe.path().toStdString());
    window.settings()->form()->set_value("pretrained_vae_model_name_or_path", "");
    QVERIFY2(window.start_action()->isEnabled(), qPrintable(text->text()));
  }

  void a_bad_config_exit_offers_no_resume() {
    QTemporaryDir dir;
    const QString worker = dir.filePath(QStringLiteral("refusing-worker.sh"));
    QFile script(worker);
    QVERIFY(script.open(QIODevice::WriteOnly));
    script.write(
        "#!/bin/sh\n"
        "echo '{\"type\":\"error\",\"message\":\"studio.dataset_dir: no such folder\"}'\n"
        "exit 2\n");
    script.close();
    script.setPermissions(script.permissions() | QFileDevice::ExeOwner);
    MainWindow window;
    window.controller()->set_program(worker);
    window.show();
    nlohmann::json config;
    config["max_train_steps"] = 10;
    config["output_dir"] = dir.path().toStdString();
    window.settings()->form()->set_config(config);
    QVERIFY(window.start_run());
    QTRY_COMPARE_WITH_TIMEOUT(window.shown_state(), RunState::Failed, 10000);
    QCOMPARE(window.controller()->exit_code(), 2);
    QVERIFY(!window.failure_panel()->isHidden());
    QVERIFY(window.failure_panel()->reason().contains(QStringLiteral("code 2")));
    QVERIFY(window.failure_panel()->reason().contains(QStringLiteral("Fix the settings")));
    QVERIFY(window.failure_panel()->resume_button()->isHidden());
    QVERIFY(!window.resume_from_checkpoint_action()->isEnabled());

    // Any other failure still offers Resume.
    QVERIFY(script.open(QIODevice::WriteOnly | QIODevice::Truncate));
    script.write("#!/bin/sh\nexit 1\n");
    script.close();
    QVERIFY(window.start_run());
    QTRY_COMPARE_WITH_TIMEOUT(window.controller()->exit_code(), 1, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(!window.failure_panel()->resume_button()->isHidden(), 5000);
    QVERIFY(window.resume_from_checkpoint_action()->isEnabled());
  }
};

QTEST_MAIN(NativeSupportTest)
#include "tst_native_support.moc"
