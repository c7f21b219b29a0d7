// The generated fields as a user meets them: spin boxes that show a default below a conditional minimum and
// clear its message when corrected, grey defaults in spin boxes and combo boxes, the studio's own backbone
// settings hidden once a model family (an imported sdxl config) decides the backbone.
#include <QComboBox>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QSpinBox>
#include <QTabWidget>
#include <QToolButton>
#include <QtTest>

#include "core/config/registry.h"
#include "ui/option_form.h"
#include "ui/settings_panel.h"

using repa::ui::OptionForm;
using repa::ui::SettingsPanel;

namespace {

// The darkest grey level among the pixels of the left two thirds of a widget (its text; the arrows sit right).
int darkest_text(QWidget* widget) {
  const QImage image = widget->grab().toImage();
  int darkest = 255;
  for (int y = 3; y < image.height() - 3; ++y)
    for (int x = 3; x < image.width() * 2 / 3; ++x) darkest = std::min(darkest, qGray(image.pixel(x, y)));
  return darkest;
}

}  // namespace

class OptionFormTest : public QObject {
  Q_OBJECT

 private slots:
  void xm_candidates_shows_its_default_and_typing_the_minimum_clears_the_message() {
    SettingsPanel panel;
    panel.resize(600, 900);
    panel.show();
    OptionForm* form = panel.form();
    form->set_value("xm_enabled", true);
    auto* spin = qobject_cast<QSpinBox*>(form->editor("xm_candidate_count"));
    QVERIFY(spin);
    QCOMPARE(spin->value(), 1);  // the default, not a clamped 2 that the config does not hold
    panel.check();
    QVERIFY2(form->problem_text("xm_candidate_count").contains(QStringLiteral("2")),
             qPrintable(form->problem_text("xm_candidate_count")));
    form->focus_field("xm_candidate_count");
    spin->selectAll();
    QTest::keyClicks(spin, QStringLiteral("2"));
    QCOMPARE(spin->value(), 2);
    QCOMPARE(form->config()["xm_candidate_count"].get<int>(), 2);
    // What remains is the note that the studio's trainer does not use XM; the range message is gone.
    QVERIFY2(!form->problem_text("xm_candidate_count").contains(QStringLiteral("minimum")),
             qPrintable(form->problem_text("xm_candidate_count")));
  }

  void spin_boxes_and_combo_boxes_show_defaults_in_grey() {
    SettingsPanel panel;
    panel.resize(600, 900);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    OptionForm* form = panel.form();
    form->set_value("crepa_enabled", true);
    auto* spin = qobject_cast<QSpinBox*>(form->editor("crepa_block_index"));
    auto* combo = qobject_cast<QComboBox*>(form->editor("crepa_scheduler"));
    QVERIFY(spin && combo);
    const int default_spin = darkest_text(spin), default_combo = darkest_text(combo);
    QVERIFY2(default_spin > 90, qPrintable(QString::number(default_spin)));
    QVERIFY2(default_combo > 90, qPrintable(QString::number(default_combo)));
    // Set by the user: black.
    spin->selectAll();
    QTest::keyClicks(spin, QStringLiteral("4"));
    form->set_value("crepa_scheduler", "cosine");
    QVERIFY(form->config().contains("crepa_block_index"));
    QVERIFY2(darkest_text(spin) < 60, qPrintable(QString::number(darkest_text(spin))));
    QVERIFY2(darkest_text(combo) < 60, qPrintable(QString::number(darkest_text(combo))));
    // A new document: defaults again.
    form->set_config(nlohmann::json::object({{"crepa_enabled", true}}));
    QVERIFY(darkest_text(spin) > 90);
  }

  void a_model_family_hides_the_studio_backbone_settings() {
    SettingsPanel panel;
    OptionForm* form = panel.form();
    QVERIFY(form->is_shown("studio.architecture"));
    QVERIFY(form->is_shown("studio.sit_size"));
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("config.json"));
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(R"({"--model_family": "sdxl", "--model_type": "lora", "--crepa_enabled": false})");
    file.close();
    QString error;
    QVERIFY2(panel.import_simpletuner(path, &error), qPrintable(error));
    for (const char* key : {"studio.architecture", "studio.sit_size", "studio.patch_size", "studio.unet_config"})
      QVERIFY2(!form->is_shown(key), key);
    // The model tab names the family instead.
    QCOMPARE(qobject_cast<QComboBox*>(form->editor("model_family"))->currentData().toString(), QStringLiteral("sdxl"));
    form->set_value("model_family", nullptr);
    QVERIFY(form->is_shown("studio.architecture"));
  }

  void every_field_has_help_behind_its_question_button() {
    SettingsPanel panel;
    panel.resize(600, 900);
    panel.show();
    OptionForm* form = panel.form();
    int fields = 0;
    for (const repa::config::OptionSpec& spec : repa::config::registry()) {
      if (!form->row(spec.key)) continue;
      ++fields;
      QVERIFY2(spec.help.size() >= 20, spec.key.c_str());  // a sentence, not a word
      QLabel* help = form->help_label(spec.key);
      QVERIFY2(help && help->isHidden(), spec.key.c_str());
      QVERIFY2(help->text().startsWith(QString::fromStdString(spec.help)), spec.key.c_str());
      QVERIFY2(help->text().contains(QString::fromStdString(spec.key)), spec.key.c_str());
    }
    QVERIFY(fields >= 150);
    // The (?) button opens the help under the field.
    form->set_value("crepa_enabled", true);
    auto* button = form->findChild<QToolButton*>(QStringLiteral("helpButton_crepa_lambda"));
    QVERIFY(button);
    QTest::mouseClick(button, Qt::LeftButton);
    QVERIFY(form->help_label("crepa_lambda")->isVisible());
    QVERIFY(form->help_label("crepa_lambda")->text().contains(QStringLiteral("0.5")));  // the paper's weight
    QTest::mouseClick(button, Qt::LeftButton);
    QVERIFY(!form->help_label("crepa_lambda")->isVisible());
    // SimpleTuner's advice is carried: the paper's weights, which block to tap, what Self-Flow needs.
    QVERIFY(form->help_label("urepa_manifold_weight")->text().contains(QStringLiteral("3")));
    QVERIFY(form->help_label("crepa_block_index")->text().contains(QStringLiteral("block 8")));
    QVERIFY(form->help_label("crepa_feature_source")->text().contains(QStringLiteral("use_ema")));
  }

  void combo_boxes_show_simpletuner_labels_and_store_the_value() {
    OptionForm form;
    form.set_value("crepa_enabled", true);
    form.set_value("irepa_enabled", true);
    auto* scheduler = qobject_cast<QComboBox*>(form.editor("crepa_scheduler"));
    const int linear = scheduler->findData(QStringLiteral("linear"));
    QCOMPARE(scheduler->itemText(linear), QStringLiteral("Linear Decay"));
    scheduler->setCurrentIndex(linear);
    emit scheduler->activated(linear);
    QCOMPARE(form.config()["crepa_scheduler"].get<std::string>(), std::string("linear"));
    auto* loss = qobject_cast<QComboBox*>(form.editor("loss_type"));
    QCOMPARE(loss->currentText(), QStringLiteral("L2 (MSE)"));
    auto* source = qobject_cast<QComboBox*>(form.editor("crepa_feature_source"));
    QCOMPARE(source->currentText(), QStringLiteral("External Encoder"));
    auto* kernel = qobject_cast<QComboBox*>(form.editor("irepa_projector_kernel_size"));
    const int three = kernel->findData(QStringLiteral("3"));
    QCOMPARE(kernel->itemText(three), QStringLiteral("3 x 3 (Paper)"));
    emit kernel->activated(three);
    QVERIFY(form.config()["irepa_projector_kernel_size"] == 3);  // the number, not the label
    // A config with the value shows the label.
    form.set_config({{"crepa_enabled", true}, {"crepa_scheduler", "cosine"}});
    QCOMPARE(scheduler->currentText(), QStringLiteral("Cosine Decay"));
  }

  void the_search_finds_a_field_by_a_word_of_its_help_and_opens_it() {
    SettingsPanel panel;
    panel.resize(600, 900);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    OptionForm* form = panel.form();
    form->set_value("crepa_enabled", true);
    // Words found only in a help text: Self-Flow's mask ratio advice.
    QVERIFY(form->search(QStringLiteral("paper used 0.25")).contains(QStringLiteral("crepa_self_flow_mask_ratio")));
    // Every word must match; a match in the label ranks first.
    const QStringList found = form->search(QStringLiteral("warmup"));
    QVERIFY(found.size() >= 2);
    QVERIFY(form->label(found.front().toStdString())->text().toLower().contains(QStringLiteral("warmup")));
    QVERIFY(form->search(QStringLiteral("zzzz nothing")).isEmpty());
    // Through the window: type, see the list, Enter opens the first match on its tab with its help.
    form->set_value("urepa_enabled", true);
    form->tabs()->setCurrentIndex(static_cast<int>(repa::ui::Panel::Run));
    QTest::keyClicks(form->search_box(), QStringLiteral("similarity structure paper"));
    QVERIFY(form->search_results()->isVisible());
    QVERIFY(form->search_results()->count() >= 1);
    QCOMPARE(form->search_results()->item(0)->data(Qt::UserRole).toString(), QStringLiteral("urepa_manifold_weight"));
    QTest::keyClick(form->search_box(), Qt::Key_Return);
    QCOMPARE(form->tabs()->currentIndex(), static_cast<int>(repa::ui::Panel::LossFunctions));
    QVERIFY(form->help_label("urepa_manifold_weight")->isVisible());
    QCOMPARE(QApplication::focusWidget(), form->editor("urepa_manifold_weight"));
    // A field hidden by the current settings is still found, and says so.
    form->search_box()->clear();
    QTest::keyClicks(form->search_box(), QStringLiteral("TwinFlow"));
    QVERIFY(form->search_results()->count() >= 1);
    QVERIFY(form->search_results()->findItems(QStringLiteral("hidden"), Qt::MatchContains).size() >= 1);
    QTest::keyClicks(form->search_box(), QStringLiteral("qqq"));
    QCOMPARE(form->search_results()->count(), 1);
    QVERIFY(form->search_results()->item(0)->text().contains(QStringLiteral("No setting")));
  }

  void methods_show_only_for_the_families_they_apply_to() {
    // The families come from SimpleTuner's registry data (model_specific), not from a list in the code.
    QFile file(QStringLiteral(REPA_SOURCE_DIR "/tests/fixtures/simpletuner/options.json"));
    QVERIFY(file.open(QIODevice::ReadOnly));
    const nlohmann::json options = nlohmann::json::parse(file.readAll().toStdString());
    for (const nlohmann::json& field : options["fields"]) {
      const repa::config::OptionSpec* spec = repa::config::find_option(field["name"].get<std::string>());
      if (!spec || !field.contains("model_specific")) continue;
      QCOMPARE(nlohmann::json(spec->families), field["model_specific"]);
    }
    QCOMPARE(nlohmann::json(repa::config::find_option("urepa_enabled")->families),
             nlohmann::json({"sdxl", "sd1x", "sd2x", "kolors"}));

    OptionForm form;
    auto shown = [&form](const char* family) {
      form.set_config({{"model_family", family},
                       {"urepa_enabled", true},
                       {"twinflow_enabled", true},
                       {"internal_guidance_enabled", true}});
      QStringList keys;
      for (const char* key : {"urepa_enabled", "urepa_lambda", "twinflow_enabled", "twinflow_target_step_count",
                              "internal_guidance_enabled", "internal_guidance_loss_weight", "crepa_enabled"})
        if (form.is_shown(key)) keys << QString::fromLatin1(key);
      return keys.join(QLatin1Char(' '));
    };
    // A UNet family: U-REPA, no TwinFlow (epsilon prediction), no Internal Guidance (not a transformer).
    QCOMPARE(shown("sdxl"), QStringLiteral("urepa_enabled urepa_lambda crepa_enabled"));
    QCOMPARE(shown("sd1x"), QStringLiteral("urepa_enabled urepa_lambda crepa_enabled"));
    // A flow-matching transformer: TwinFlow and Internal Guidance, no U-REPA.
    QCOMPARE(shown("flux"), QStringLiteral("twinflow_enabled twinflow_target_step_count internal_guidance_enabled "
                                           "internal_guidance_loss_weight crepa_enabled"));
    // An epsilon-prediction transformer: Internal Guidance only.
    QCOMPARE(shown("pixart"), QStringLiteral("internal_guidance_enabled internal_guidance_loss_weight crepa_enabled"));
    // No family (the studio's own SiT or UNet): everything the other rules allow.
    form.set_config({{"urepa_enabled", true}, {"twinflow_enabled", true}, {"internal_guidance_enabled", true}});
    QVERIFY(form.is_shown("urepa_lambda") && form.is_shown("twinflow_target_step_count") &&
            form.is_shown("internal_guidance_loss_weight"));
  }
};

QTEST_MAIN(OptionFormTest)
#include "tst_option_form.moc"
