// The generated settings panels. The Loss functions panel is checked against SimpleTuner's own field list
// (the copy in tests/fixtures/simpletuner/options.json): for every field the registry declares there, the
// same order (within each group: the fields the studio's trainer uses, then those it does not, grouped
// apart), label, widget kind and visibility (rules evaluated independently from options.json's
// dependencies). Fields the trainer does not use carry a badge and a warning when in use.
// Then: validator messages at the fields block Start; presets, save/open and SimpleTuner import.
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QScrollArea>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>
#include <qcustomplot.h>
#include <cmath>
#include <algorithm>
#include <map>

#include "core/config/registry.h"
#include "ui/option_form.h"
#include "ui/schedule_preview.h"
#include "ui/settings_panel.h"

using repa::ui::OptionForm;
using repa::ui::Panel;
using repa::ui::SettingsPanel;

namespace {

nlohmann::json load_options() {
  QFile file(QStringLiteral(REPA_SOURCE_DIR "/tests/fixtures/simpletuner/options.json"));
  if (!file.open(QIODevice::ReadOnly)) return nullptr;
  const QByteArray bytes = file.readAll();
  return nlohmann::json::parse(bytes.constData(), bytes.constData() + bytes.size());
}

// SimpleTuner's dependency rules, evaluated here from options.json alone (not through the registry).
struct Reference {
  std::map<std::string, nlohmann::json> by_name;

  nlohmann::json value(const nlohmann::json& config, const std::string& key) const {
    if (config.contains(key)) return config[key];
    const auto it = by_name.find(key);
    return it == by_name.end() ? nlohmann::json() : it->second.value("default_value", nlohmann::json());
  }
  static bool holds(const nlohmann::json& dep, const nlohmann::json& v) {
    const std::string op = dep["operator"];
    const nlohmann::json& want = dep["value"];
    if (op == "equals") return v == want;
    if (op == "not_equals") return v != want;
    if (op == "greater_than") return v.is_number() && want.is_number() && v.get<double>() > want.get<double>();
    if (op == "is_set") return !v.is_null() && v != "";
    return false;
  }
  // model_specific: a field applies to the families listed (to any while no family is chosen).
  bool applies(const nlohmann::json& field, const nlohmann::json& config) const {
    if (!field.contains("model_specific") || !field["model_specific"].is_array()) return true;
    const nlohmann::json family = value(config, "model_family");
    if (!family.is_string() || family == "") return true;
    for (const nlohmann::json& name : field["model_specific"])
      if (name == family) return true;
    return false;
  }
  bool rule(const nlohmann::json& field, const nlohmann::json& config, const char* action) const {
    const bool show = std::string(action) == "show";
    if (show && !applies(field, config)) return false;
    if (!field.contains("dependencies") || !field["dependencies"].is_array()) return true;
    for (const nlohmann::json& dep : field["dependencies"]) {
      if (dep.value("action", std::string("show")) != action) continue;
      if (!holds(dep, value(config, dep["field"]))) return false;
      // A field that depends on one hidden for this family is hidden with it (TwinFlow's step count).
      const auto parent = by_name.find(dep["field"]);
      if (show && parent != by_name.end() && !applies(parent->second, config)) return false;
    }
    return true;
  }
  // A value for which a dependency holds.
  nlohmann::json satisfying(const nlohmann::json& dep) const {
    const std::string op = dep["operator"];
    if (op == "equals") return dep["value"];
    if (op == "greater_than") return dep["value"].get<double>() + 1;
    if (op == "is_set") return 0.5;
    const auto it = by_name.find(dep["field"]);  // not_equals: another of its choices
    if (it != by_name.end() && it->second.contains("choices") && it->second["choices"].is_array())
      for (const nlohmann::json& c : it->second["choices"])
        if (c != dep["value"]) return c;
    return "something else";
  }
};

}  // namespace

class SettingsPanelsTest : public QObject {
  Q_OBJECT

  nlohmann::json options_;
  Reference ref_;
  std::vector<nlohmann::json> loss_fields_;  // options.json's loss_functions fields the registry declares

 private slots:
  void initTestCase() {
    options_ = load_options();
    QVERIFY2(options_.is_object(), "tests/fixtures/simpletuner/options.json not found");
    for (const nlohmann::json& f : options_["fields"]) ref_.by_name[f["name"]] = f;
    for (const nlohmann::json& f : options_["fields"])
      if (f["tab"] == "training" && f["section"] == "loss_functions" && repa::config::find_option(f["name"]))
        loss_fields_.push_back(f);
    QVERIFY(loss_fields_.size() >= 40);
  }

  void loss_panel_order_labels_and_widgets_follow_simpletuner() {
    OptionForm form;
    // SimpleTuner's order: main fields by (order, label), then the advanced subsection likewise.
    std::vector<nlohmann::json> expected = loss_fields_;
    std::stable_sort(expected.begin(), expected.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
      const bool adv_a = a.value("subsection", nlohmann::json()) == "advanced";
      const bool adv_b = b.value("subsection", nlohmann::json()) == "advanced";
      if (adv_a != adv_b) return !adv_a;
      if (a["order"] != b["order"]) return a["order"].get<double>() < b["order"].get<double>();
      return a["ui_label"].get<std::string>() < b["ui_label"].get<std::string>();
    });
    // The fields the studio's trainer does not use are grouped apart, after the others, in the same order.
    const auto export_only = [](const nlohmann::json& f) {
      const auto trainer = repa::config::find_option(f["name"])->trainer;
      return trainer == repa::config::TrainerSupport::ExportOnly || trainer == repa::config::TrainerSupport::Refused;
    };
    std::stable_partition(expected.begin(), expected.end(), [&](const nlohmann::json& f) { return !export_only(f); });
    std::vector<std::string> expected_keys;
    for (const auto& f : expected) expected_keys.push_back(f["name"]);
    const std::vector<std::string> shown = form.field_keys(Panel::LossFunctions);
    QCOMPARE(shown.size(), expected_keys.size());
    for (size_t i = 0; i < shown.size(); ++i)
      QVERIFY2(shown[i] == expected_keys[i],
               qPrintable(QStringLiteral("position %1: panel has %2, SimpleTuner %3")
                              .arg(i).arg(QString::fromStdString(shown[i]), QString::fromStdString(expected_keys[i]))));

    for (const nlohmann::json& f : expected) {
      const std::string key = f["name"];
      const QString context = QString::fromStdString(key);
      QCOMPARE(form.label(key)->text(), QString::fromStdString(f["ui_label"].get<std::string>()));
      QVERIFY2(!form.editor(key)->toolTip().isEmpty(), qPrintable(context));
      QCOMPARE(form.in_advanced_group(key), f.value("subsection", nlohmann::json()) == "advanced");
      QCOMPARE(form.in_export_only_group(key), export_only(f));
      if (export_only(f)) {
        QVERIFY2(form.badge(key), qPrintable(context));
        QCOMPARE(form.badge(key)->toolTip(),
                 QStringLiteral("exported to SimpleTuner; not used by the studio's trainer"));
        QVERIFY(form.editor(key)->toolTip().contains(QStringLiteral("not used by the studio's trainer")));
      } else if (repa::config::find_option(key)->trainer == repa::config::TrainerSupport::Honoured) {
        QVERIFY2(!form.badge(key), qPrintable(context));
      }
      const std::string kind = f["field_type"];
      QWidget* editor = form.editor(key);
      if (kind == "checkbox") QVERIFY2(qobject_cast<QCheckBox*>(editor), qPrintable(context));
      else if (kind == "select") QVERIFY2(qobject_cast<QComboBox*>(editor), qPrintable(context));
      else if (kind == "number")
        QVERIFY2(qobject_cast<QSpinBox*>(editor) || qobject_cast<QLineEdit*>(editor), qPrintable(context));
      else QVERIFY2(qobject_cast<QLineEdit*>(editor), qPrintable(context));
      if (kind == "select") {  // every SimpleTuner choice is offered
        auto* combo = qobject_cast<QComboBox*>(editor);
        for (const nlohmann::json& c : f["choices"]) {
          const QString text = c.is_string() ? QString::fromStdString(c.get<std::string>()) : QString::fromStdString(c.dump());
          QVERIFY2(combo->findData(text) >= 0, qPrintable(context + QStringLiteral(": ") + text));
        }
      }
    }
  }

  void loss_panel_visibility_follows_simpletuner_rules() {
    // Scenarios: nothing set; every rule made true at once; each rule's field alone; and everything but
    // one rule's field, so each field is seen both shown and hidden where its rules allow.
    nlohmann::json all = nlohmann::json::object();
    std::vector<nlohmann::json> deps;
    for (const nlohmann::json& f : loss_fields_)
      if (f.contains("dependencies") && f["dependencies"].is_array())
        for (const nlohmann::json& dep : f["dependencies"]) {
          deps.push_back(dep);
          if (!all.contains(dep["field"])) all[dep["field"].get<std::string>()] = ref_.satisfying(dep);
        }
    std::vector<nlohmann::json> scenarios = {nlohmann::json::object(), all};
    // Per-family visibility (model_specific): a UNet family, a flow-matching transformer, an epsilon
    // transformer and a next-token family, with every rule true and with nothing else set.
    for (const char* family : {"sdxl", "kolors", "flux", "pixart", "heartmula", "deepfloyd"}) {
      nlohmann::json with_family = all;
      with_family["model_family"] = family;
      scenarios.push_back(with_family);
      scenarios.push_back({{"model_family", family}, {"urepa_enabled", true}, {"twinflow_enabled", true},
                           {"internal_guidance_enabled", true}});
    }
    for (const nlohmann::json& dep : deps) {
      scenarios.push_back({{dep["field"].get<std::string>(), ref_.satisfying(dep)}});
      nlohmann::json without = all;
      without.erase(dep["field"].get<std::string>());
      scenarios.push_back(without);
    }

    OptionForm form;
    int shown_checks = 0, hidden_checks = 0;
    for (const nlohmann::json& config : scenarios) {
      form.set_config(config);
      for (const nlohmann::json& f : loss_fields_) {
        const std::string key = f["name"];
        const bool want = ref_.rule(f, config, "show");
        QVERIFY2(form.is_shown(key) == want,
                 qPrintable(QStringLiteral("%1 should be %2 with %3")
                                .arg(QString::fromStdString(key), want ? QStringLiteral("shown") : QStringLiteral("hidden"),
                                     QString::fromStdString(config.dump()))));
        QCOMPARE(form.row(key)->isEnabled(), ref_.rule(f, config, "enable"));
        (want ? shown_checks : hidden_checks)++;
      }
    }
    QVERIFY(shown_checks > 100);
    QVERIFY(hidden_checks > 100);
  }

  void visibility_changes_live_when_a_box_is_ticked() {
    OptionForm form;
    form.show();
    QVERIFY(!form.is_shown("crepa_lambda"));
    qobject_cast<QCheckBox*>(form.editor("crepa_enabled"))->setChecked(true);
    QVERIFY(form.is_shown("crepa_lambda"));
    QVERIFY(!form.is_shown("crepa_decay_steps"));  // constant scheduler: no decay
    auto* scheduler = qobject_cast<QComboBox*>(form.editor("crepa_scheduler"));
    scheduler->setCurrentIndex(scheduler->findData(QStringLiteral("polynomial")));
    emit scheduler->activated(scheduler->currentIndex());
    QVERIFY(form.is_shown("crepa_decay_steps"));
    QCOMPARE(form.config()["crepa_scheduler"].get<std::string>(), std::string("polynomial"));
    auto* threshold = qobject_cast<QLineEdit*>(form.editor("crepa_similarity_threshold"));
    QVERIFY(!form.is_shown("crepa_threshold_mode"));
    QTest::keyClicks(threshold, QStringLiteral("0.8"));
    QVERIFY(form.is_shown("crepa_threshold_mode"));
    QCOMPARE(form.config()["crepa_similarity_threshold"].get<double>(), 0.8);
    threshold->selectAll();
    QTest::keyClick(threshold, Qt::Key_Delete);
    QVERIFY(!form.config().contains("crepa_similarity_threshold"));  // empty = not set
    QVERIFY(!form.is_shown("crepa_threshold_mode"));
  }

  void other_panels_hold_the_studio_settings() {
    OptionForm form;
    const auto model = form.field_keys(Panel::Model);
    const auto dataset = form.field_keys(Panel::Dataset);
    const auto optimizer = form.field_keys(Panel::Optimizer);
    const auto run = form.field_keys(Panel::Run);
    auto has = [](const std::vector<std::string>& keys, const char* key) {
      return std::find(keys.begin(), keys.end(), key) != keys.end();
    };
    QVERIFY(has(model, "studio.architecture"));
    QVERIFY(has(model, "model_family"));
    QVERIFY(has(dataset, "studio.dataset_dir"));
    QVERIFY(has(dataset, "resolution_type"));  // the aspect buckets of a family run
    QVERIFY(has(dataset, "minimum_image_size"));
    QVERIFY(has(optimizer, "learning_rate"));
    QVERIFY(has(run, "max_train_steps"));
    QVERIFY(has(run, "studio.device"));
    // Every registry option with a place in the panels is in exactly one of them.
    size_t total = 0;
    for (Panel p : {Panel::LossFunctions, Panel::Model, Panel::Dataset, Panel::Optimizer, Panel::Run})
      total += form.field_keys(p).size();
    size_t placed = 0;
    for (const auto& spec : repa::config::registry())
      if (!spec.tab.empty() || spec.key.rfind("studio.", 0) == 0) ++placed;
    QCOMPARE(total, placed);
  }

  void invalid_settings_are_marked_at_their_fields() {
    SettingsPanel panel;
    panel.form()->set_config({{"crepa_enabled", true}, {"crepa_lambda", -1.0}, {"model_family", "flux"}});
    nlohmann::json resolved;
    QVERIFY(panel.check(&resolved) >= 1);
    QVERIFY2(!panel.form()->problem_text("crepa_lambda").isEmpty(), qPrintable(panel.problem_summary()));
    QVERIFY(!panel.problem_summary().isEmpty());
    // Fixing the value clears the mark at once.
    panel.form()->set_value("crepa_lambda", 0.5);
    QCOMPARE(panel.check(&resolved), 0);
    QVERIFY(panel.form()->problem_text("crepa_lambda").isEmpty());
    QCOMPARE(resolved["crepa_lambda"].get<double>(), 0.5);

    // REPA on a UNet family: the validator's conflict message appears before Start.
    panel.form()->set_config({{"crepa_enabled", true}, {"model_family", "sdxl"}});
    QVERIFY(panel.check() >= 1);
    QString all_messages = panel.problem_summary();
    for (const char* key : {"crepa_enabled", "model_family", "urepa_enabled"})
      all_messages += panel.form()->problem_text(key);
    QVERIFY2(all_messages.contains(QStringLiteral("U-REPA"), Qt::CaseInsensitive) ||
                 all_messages.contains(QStringLiteral("urepa"), Qt::CaseInsensitive),
             qPrintable(all_messages));
  }

  void schedule_preview_plots_the_workers_planned_weight() {
    // The curve comes from `repa-train schedule` (the trainer's own CoefficientSchedule).
    repa::ui::SchedulePreview preview;
    preview.set_program(QStringLiteral(REPA_TRAIN_EXE));
    QSignalSpy updated(&preview, &repa::ui::SchedulePreview::curve_updated);
    preview.request_now({{"crepa_enabled", true}, {"crepa_scheduler", "linear"}, {"crepa_lambda", 0.5},
                         {"crepa_lambda_end", 0.1}, {"max_train_steps", 1000}});
    QVERIFY2(updated.wait(20000), qPrintable(preview.status_text()));
    QCOMPARE(preview.series_count(), 1);
    QCOMPARE(preview.point_count(0), 201);  // steps 0, 5, ..., 1000
    QCPGraph* graph = preview.plot()->graph(0);
    auto at = [graph](double step) { return graph->data()->findBegin(step, false)->value; };
    // Linear from lambda to lambda_end over max_train_steps (decay_steps 0).
    QVERIFY(std::abs(at(500) - 0.3) < 1e-3);
    QVERIFY(std::abs(at(1000) - 0.1) < 1e-6);
    QVERIFY(at(5) > at(995));
    // One curve needs no legend over it, and the axes keep the plot's width.
    QVERIFY(!preview.plot()->legend->visible());
    preview.resize(400, 260);
    preview.show();
    QVERIFY(QTest::qWaitForWindowExposed(&preview));
    preview.plot()->replot();
    QVERIFY(preview.plot()->axisRect()->width() > preview.plot()->width() / 2);
  }

  void schedule_csv_parses_by_column() {
    const auto columns = repa::ui::SchedulePreview::parse_csv("step,crepa_weight,urepa_weight\n0,0,0.5\n10,0.25,nan\n");
    QCOMPARE(columns.size(), size_t(3));
    QCOMPARE(columns[1].first, QStringLiteral("crepa_weight"));
    QCOMPARE(columns[1].second, (QVector<double>{0, 0.25}));
    QVERIFY(std::isnan(columns[2].second[1]));
    QVERIFY(repa::ui::SchedulePreview::parse_csv("error text").empty());
  }

  void export_for_simpletuner_reports_what_was_dropped() {
    QTemporaryDir dir;
    qputenv("REPA_TRAIN", REPA_TRAIN_EXE);
    SettingsPanel panel;
    panel.form()->set_config({{"crepa_enabled", true}, {"model_family", "flux"}, {"lora_rank", 16},
                              {"studio", {{"dataset_dir", dir.filePath(QStringLiteral("images")).toStdString()}, {"sit_size", "S"}}}});
    QSignalSpy finished(&panel, &SettingsPanel::export_finished);
    panel.export_simpletuner(dir.filePath(QStringLiteral("out")));
    QVERIFY(finished.wait(30000));
    QVERIFY2(finished.at(0).at(0).toBool(), qPrintable(finished.at(0).at(1).toString()));
    const QString report = finished.at(0).at(1).toString();
    QVERIFY2(report.contains(QStringLiteral("studio.sit_size")), qPrintable(report));  // a dropped studio key
    QFile exported(dir.filePath(QStringLiteral("out/config.json")));
    QVERIFY(exported.open(QIODevice::ReadOnly));
    const QByteArray bytes = exported.readAll();
    const nlohmann::json config = nlohmann::json::parse(bytes.constData(), bytes.constData() + bytes.size());
    QCOMPARE(config["lora_rank"].get<int>(), 16);  // passed through
    QVERIFY(!config.contains("studio"));
    QVERIFY(QFile::exists(dir.filePath(QStringLiteral("out/multidatabackend.json"))));
    qunsetenv("REPA_TRAIN");
  }

  void save_open_and_import_keep_every_key() {
    QTemporaryDir dir;
    SettingsPanel panel;
    panel.form()->set_config({{"crepa_enabled", true}, {"crepa_lambda", 0.25}, {"studio", {{"sit_size", "S"}}}});
    QVERIFY(panel.save_to(dir.filePath(QStringLiteral("a.json"))));
    QVERIFY(!panel.is_modified());
    panel.new_document();
    QVERIFY(!panel.form()->config().contains("crepa_lambda"));
    QVERIFY(panel.open_file(dir.filePath(QStringLiteral("a.json"))));
    QCOMPARE(panel.form()->config()["crepa_lambda"].get<double>(), 0.25);
    QCOMPARE(panel.form()->config()["studio"]["sit_size"].get<std::string>(), std::string("S"));
    QVERIFY(panel.recent_files().contains(QFileInfo(dir.filePath(QStringLiteral("a.json"))).absoluteFilePath()));

    // A SimpleTuner config: "--" prefixes and old aliases, plus keys the studio does not use.
    QFile st(dir.filePath(QStringLiteral("config.json")));
    QVERIFY(st.open(QIODevice::WriteOnly));
    st.write("{\"--model_family\": \"flux\", \"--crepa_enabled\": \"true\", \"validation_steps\": 250,\n                 \"--lora_rank\": 16, \"--crepa_block_index\": 8}");
    st.close();
    QVERIFY(panel.import_simpletuner(dir.filePath(QStringLiteral("config.json"))));
    const nlohmann::json& c = panel.form()->config();
    QCOMPARE(c["model_family"].get<std::string>(), std::string("flux"));
    QCOMPARE(c["validation_step_interval"].get<int>(), 250);
    QCOMPARE(c["lora_rank"].get<int>(), 16);  // kept for the export even though the studio ignores it
    QVERIFY(panel.form()->is_shown("crepa_block_index"));  // "true" as text counts as ticked
    QCOMPARE(qobject_cast<QSpinBox*>(panel.form()->editor("crepa_block_index"))->value(), 8);
  }

  void options_the_trainer_ignores_are_grouped_apart_badged_and_warned() {
    SettingsPanel panel;
    panel.show();
    OptionForm* form = panel.form();
    // The Loss functions panel ends with a folded group holding them.
    auto* page = form->tabs()->widget(static_cast<int>(Panel::LossFunctions));
    QWidget* group = page->findChild<QWidget*>(QStringLiteral("exportOnlyGroup"));
    QVERIFY(group);
    QVERIFY(group->findChild<QToolButton*>()->text().startsWith(QStringLiteral("Exported to SimpleTuner only (54)")));
    QVERIFY(group->isAncestorOf(form->row("xm_enabled")));
    QVERIFY(group->isAncestorOf(form->row("scheduled_sampling_max_step_offset")));  // advanced, folded inside
    QVERIFY(!group->isAncestorOf(form->row("crepa_lambda")));
    QVERIFY(!form->row("xm_enabled")->isVisible());  // folded
    form->focus_field("scheduled_sampling_max_step_offset");
    QVERIFY(form->row("scheduled_sampling_max_step_offset")->isVisible());
    // Other panels group their run settings the same way (model_flavour in Model).
    QVERIFY(form->in_export_only_group("model_flavour"));
    QVERIFY(!form->in_export_only_group("model_type"));  // LoRA or full: the trainer does both
    QVERIFY(!form->in_export_only_group("data_backend_config"));  // native runs read its image dataset
    QVERIFY(!form->in_export_only_group("learning_rate"));

    // In use: a warning at the field (amber), Start is not blocked.
    form->set_config({{"xm_enabled", true}, {"xm_candidate_count", 2}, {"twinflow_enabled", true}});
    QCOMPARE(panel.check(), 0);
    QCOMPARE(form->problem_text("xm_enabled"),
             QStringLiteral("true: exported to SimpleTuner; not used by the studio's trainer"));
    QVERIFY(form->problem_text("twinflow_enabled").contains(QStringLiteral("not used by the studio's trainer")));
    QVERIFY(form->problem_text("crepa_lambda").isEmpty());
    QVERIFY(panel.problem_summary().isEmpty());
    // docs/gui.md's picture of the group, unfolded, with the warnings.
    panel.resize(560, 1400);
    form->focus_field("scheduled_sampling_max_step_offset");
    QDir().mkpath(QStringLiteral(REPA_SCREENSHOT_DIR));
    const QPixmap shot = qobject_cast<QScrollArea*>(form->tabs()->currentWidget())->widget()->grab();
    QVERIFY(shot.save(QStringLiteral(REPA_SCREENSHOT_DIR "/settings_export_only.png")));

    // A feature source other than the encoder blocks Start, marked at its field.
    form->set_config({{"crepa_enabled", true}, {"crepa_feature_source", "backbone"}});
    QCOMPARE(panel.check(), 1);
    QVERIFY(form->problem_text("crepa_feature_source").contains(QStringLiteral("a native run is refused")));
    QVERIFY(panel.problem_summary().contains(QStringLiteral("1 setting(s) must be fixed")));

    // A conditional option's badge shows while its condition does not hold.
    form->set_config({{"crepa_enabled", true}});
    QVERIFY(form->badge("crepa_use_tae"));
    QVERIFY(!form->badge("crepa_use_tae")->isHidden());
    QCOMPARE(form->badge("crepa_use_tae")->toolTip(),
             QStringLiteral("exported to SimpleTuner; used by the studio's trainer only when studio.teacher_input "
                            "is \"vae_decode\""));
    QVERIFY(!form->in_export_only_group("crepa_use_tae"));
    form->set_value("studio.teacher_input", "vae_decode");
    QVERIFY(form->badge("crepa_use_tae")->isHidden());
  }

  void import_shows_what_simpletuner_drops_and_what_the_trainer_ignores() {
    SettingsPanel panel;
    panel.show();
    const QString example =
        QStringLiteral(REPA_SOURCE_DIR "/tests/config/data/simpletuner_examples/config.json.example");
    QVERIFY(panel.import_simpletuner(example));
    const QStringList warnings = panel.import_warnings();
    QVERIFY2(warnings.contains(QStringLiteral("validation_torch_compile: unknown option, ignored: SimpleTuner's config "
                                              "loader drops the string \"false\" before its parser")),
             qPrintable(warnings.join(QLatin1Char('\n'))));
    QVERIFY(warnings.contains(
        QStringLiteral("report_to: \"wandb\": exported to SimpleTuner; not used by the studio's trainer")));
    QVERIFY(!panel.form()->config().contains("validation_torch_compile"));
    QCOMPARE(panel.form()->config()["disable_benchmark"].get<std::string>(), std::string("false"));  // registered
    // The report is on screen, and the fields carry their warnings.
    auto* report = panel.findChild<QMessageBox*>(QStringLiteral("importReport"));
    QVERIFY(report);
    QTRY_VERIFY(report->isVisible());
    QVERIFY(report->text().contains(QStringLiteral("validation_torch_compile")));
    QVERIFY(panel.form()->problem_text("report_to").contains(QStringLiteral("not used by the studio's trainer")));
    QCOMPARE(panel.check(), 0);
    report->close();
  }
};

QTEST_MAIN(SettingsPanelsTest)
#include "tst_settings_panels.moc"
