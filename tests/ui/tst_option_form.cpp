// The generated fields as a user meets them: spin boxes that show a default below a conditional minimum and
// clear its message when corrected, grey defaults in spin boxes and combo boxes, the studio's own backbone
// settings hidden once a model family (an imported sdxl config) decides the backbone.
#include <QComboBox>
#include <QImage>
#include <QLabel>
#include <QSpinBox>
#include <QTabWidget>
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
};

QTEST_MAIN(OptionFormTest)
#include "tst_option_form.moc"
