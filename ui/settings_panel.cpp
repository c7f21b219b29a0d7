#include "ui/settings_panel.h"

#include <QAction>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QProcess>
#include <QSaveFile>
#include <QSettings>
#include <QTemporaryFile>
#include <QVBoxLayout>

#include "core/base/error.h"
#include "core/config/loader.h"
#include "core/config/presets.h"
#include "core/config/registry.h"
#include "core/config/simpletuner_fields.h"
#include "core/config/simpletuner_loader.h"
#include "core/config/values.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/schedule_preview.h"

namespace repa::ui {
namespace {

constexpr int kMaxRecent = 8;
const QString kRecentKey = QStringLiteral("document/recentFiles");

nlohmann::json read_json(const QString& path, QString* error) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    if (error) *error = QObject::tr("Cannot open %1: %2").arg(path, file.errorString());
    return nullptr;
  }
  const QByteArray bytes = file.readAll();
  nlohmann::json parsed = nlohmann::json::parse(bytes.constData(), bytes.constData() + bytes.size(), nullptr, false);
  if (!parsed.is_object()) {
    if (error) *error = QObject::tr("%1 is not a JSON object").arg(path);
    return nullptr;
  }
  return parsed;
}

}  // namespace

SettingsPanel::SettingsPanel(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("settingsPanel"));
  summary_ = new QLabel(this);
  summary_->setObjectName(QStringLiteral("problemSummary"));
  summary_->setWordWrap(true);
  summary_->setStyleSheet(QStringLiteral("QLabel { color: #c62828; background: #fdecea; padding: 4px; }"));
  summary_->hide();
  form_ = new OptionForm(this);
  preview_ = new SchedulePreview(this);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(summary_);
  layout->addWidget(form_, 1);
  setMinimumWidth(320);  // the window gives the dock about a quarter of its width, 360 px on a 1280 px screen
  connect(form_, &OptionForm::config_edited, this, &SettingsPanel::on_edited);
  new_document();
}

void SettingsPanel::place_preview() {
  const nlohmann::json& config = form_->config();
  const bool crepa = repa::config::config_value(config, "crepa_enabled") == true;
  const bool urepa = repa::config::config_value(config, "urepa_enabled") == true;
  preview_->setVisible(crepa || urepa);
  if (!crepa && !urepa) return;
  // Under the last schedule field of the enabled method, so the curve sits beside what shapes it.
  form_->insert_after(urepa ? "urepa_threshold_mode" : "crepa_threshold_mode", preview_);
  preview_->request(config);
}

void SettingsPanel::on_edited() {
  if (!modified_) {
    modified_ = true;
    emit document_changed();
  }
  // Messages follow the edits, so a fixed field loses its red mark at once.
  if (!first_problem_key_.empty() || !summary_->isHidden()) check();
  place_preview();
}

void SettingsPanel::set_document(const nlohmann::json& config, const QString& path, const QString& title) {
  form_->set_config(config);
  path_ = path;
  title_ = title;
  modified_ = false;
  first_problem_key_.clear();
  summary_->hide();
  place_preview();
  emit document_changed();
}

void SettingsPanel::new_document() { set_document(nlohmann::json::object(), QString(), tr("Untitled")); }

bool SettingsPanel::open_file(const QString& path, QString* error) {
  nlohmann::json config = read_json(path, error);
  if (config.is_null()) return false;
  // A preset file wraps its config ({"description", "config"}); a studio config is the object itself.
  if (config.contains("config") && config["config"].is_object() && config.contains("description"))
    config = config["config"];
  set_document(config, path, QFileInfo(path).fileName());
  remember_recent(path);
  return true;
}

bool SettingsPanel::save_to(const QString& path, QString* error) {
  QSaveFile file(path);  // written beside and renamed: a failed save leaves the old file intact
  if (!file.open(QIODevice::WriteOnly) || file.write(QByteArray::fromStdString(form_->config().dump(2) + "\n")) < 0 ||
      !file.commit()) {
    if (error) *error = tr("Cannot write %1: %2").arg(path, file.errorString());
    return false;
  }
  path_ = path;
  title_ = QFileInfo(path).fileName();
  modified_ = false;
  remember_recent(path);
  emit document_changed();
  return true;
}

bool SettingsPanel::load_preset(const QString& name) {
  try {
    const repa::config::Preset preset = repa::config::find_preset(name.toStdString());
    set_document(preset.config, QString(), tr("preset %1").arg(name));
    return true;
  } catch (const repa::Error& e) {
    QMessageBox::warning(this, tr("Preset"), QString::fromUtf8(e.what()));
    return false;
  }
}

bool SettingsPanel::import_simpletuner(const QString& path, QString* error) {
  const nlohmann::json raw = read_json(path, error);
  if (raw.is_null()) return false;
  nlohmann::json config = nlohmann::json::object();
  QStringList dropped;
  for (auto it = raw.begin(); it != raw.end(); ++it) {
    std::string key = it.key();
    if (key.rfind("--", 0) == 0) key = key.substr(2);
    // Old spellings (validation_steps) become the registry's names; unknown keys stay exactly as given.
    nlohmann::json value = it.value();
    if (const auto renamed = repa::config::renamed_by_simpletuner_loader(key, value)) {
      key = renamed->first;  // save_total_limit, vae_cache_preprocess: read under their new names, as SimpleTuner does
      value = renamed->second;
    }
    if (const repa::config::OptionSpec* spec = repa::config::find_option(key)) {
      key = spec->key;
      // SimpleTuner writes flags and numbers as text ("true", "1e-4"); the panels want typed values.
      const repa::config::ParsedValue parsed = repa::config::parse_value(*spec, value);
      if (parsed.given && parsed.error.empty()) value = parsed.value;
    } else if (repa::config::find_simpletuner_field(key) == nullptr) {
      // A key SimpleTuner no longer registers: dropped as SimpleTuner's own loader drops it, or kept so
      // that the validator names it.
      const std::string why = repa::config::dropped_by_simpletuner_loader(key, value);
      if (!why.empty()) {
        dropped << QStringLiteral("%1: unknown option, ignored: %2")
                       .arg(QString::fromStdString(key), QString::fromStdString(why));
        continue;
      }
    }
    config[key] = value;
  }
  set_document(config, QString(), tr("%1 (imported)").arg(QFileInfo(path).fileName()));
  modified_ = true;
  emit document_changed();

  // What the user should know about the import: keys dropped, options the studio's trainer ignores, problems.
  const repa::config::LoadReport report = repa::config::load_config(config, "", {});
  QStringList warnings = dropped;
  for (const auto& warning : report.warnings) warnings << QString::fromStdString(repa::config::format_problem(warning));
  import_warnings_ = warnings;
  check();
  if (!warnings.isEmpty() || !report.problems.empty()) {
    QString text = tr("%n warning(s):", nullptr, static_cast<int>(warnings.size())) + QStringLiteral("\n") +
                   warnings.join(QLatin1Char('\n'));
    if (!report.problems.empty())
      text += QStringLiteral("\n\n") + QString::fromStdString(repa::config::format_problems(report.problems, ""));
    // Not modal: a report to read while going on working, like the export's.
    auto* box = new QMessageBox(QMessageBox::Information, tr("Imported %1").arg(QFileInfo(path).fileName()), text,
                                QMessageBox::Ok, this);
    box->setObjectName(QStringLiteral("importReport"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  }
  return true;
}

void SettingsPanel::export_simpletuner(const QString& directory) {
  auto* config_file = new QTemporaryFile(QDir::tempPath() + QStringLiteral("/repa-export-XXXXXX.json"), this);
  if (!config_file->open()) {
    emit export_finished(false, tr("Cannot write a temporary config: %1").arg(config_file->errorString()));
    return;
  }
  config_file->write(QByteArray::fromStdString(form_->config().dump(2)));
  config_file->flush();
  export_process_ = new QProcess(this);
  export_process_->setProcessChannelMode(QProcess::MergedChannels);
  connect(export_process_, &QProcess::finished, this, [this, config_file](int code, QProcess::ExitStatus status) {
    const QString report = QString::fromUtf8(export_process_->readAll()).trimmed();
    emit export_finished(status == QProcess::NormalExit && code == 0, report);
    export_process_->deleteLater();
    export_process_ = nullptr;
    config_file->deleteLater();
  });
  connect(export_process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
    if (e == QProcess::FailedToStart) emit export_finished(false, export_process_->errorString());
  });
  export_process_->start(locate_repa_train(), {QStringLiteral("export"), config_file->fileName(), QStringLiteral("--format"),
                                               QStringLiteral("simpletuner"), QStringLiteral("--out"), directory});
}

QString SettingsPanel::document_title() const { return title_ + (modified_ ? QStringLiteral(" *") : QString()); }

bool SettingsPanel::maybe_save() {
  if (!modified_) return true;
  const auto answer = QMessageBox::question(this, tr("Unsaved settings"), tr("Save the changes to %1?").arg(title_),
                                            QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel);
  if (answer == QMessageBox::Cancel) return false;
  if (answer == QMessageBox::Discard) return true;
  QString path = path_;
  if (path.isEmpty()) path = QFileDialog::getSaveFileName(this, tr("Save settings"), QString(), tr("Config (*.json)"));
  if (path.isEmpty()) return false;
  QString error;
  if (!save_to(path, &error)) {
    QMessageBox::critical(this, tr("Save"), error);
    return false;
  }
  return true;
}

int SettingsPanel::check(nlohmann::json* resolved) {
  const repa::config::LoadReport report = repa::config::load_config(form_->config(), "", {});
  // Problems (errors, and errors for a native run) block Start; warnings are shown beside their fields.
  const std::vector<repa::config::Problem>& problems = report.problems;
  std::vector<repa::config::Problem> marks = problems;
  marks.insert(marks.end(), report.warnings.begin(), report.warnings.end());
  const std::vector<repa::config::Problem> rest = form_->show_problems(marks);
  first_problem_key_ = problems.empty() ? std::string() : problems.front().key;
  QStringList lines;
  for (const auto& p : rest)
    if (p.severity != repa::config::Severity::Warning)
      lines << QStringLiteral("%1: %2").arg(QString::fromStdString(p.key), QString::fromStdString(p.message));
  if (!problems.empty()) {
    summary_->setText(tr("%n setting(s) must be fixed before Start.", nullptr, static_cast<int>(problems.size())) +
                      (lines.isEmpty() ? QString() : QStringLiteral("\n") + lines.join(QLatin1Char('\n'))));
    summary_->show();
  } else {
    summary_->hide();
  }
  if (resolved) *resolved = report.config;
  return static_cast<int>(problems.size());
}

void SettingsPanel::show_first_problem() {
  if (!first_problem_key_.empty()) form_->focus_field(first_problem_key_);
}

QString SettingsPanel::problem_summary() const { return summary_->isHidden() ? QString() : summary_->text(); }

QStringList SettingsPanel::recent_files() const { return QSettings().value(kRecentKey).toStringList(); }

void SettingsPanel::remember_recent(const QString& path) {
  QStringList files = recent_files();
  const QString absolute = QFileInfo(path).absoluteFilePath();
  files.removeAll(absolute);
  files.prepend(absolute);
  while (files.size() > kMaxRecent) files.removeLast();
  QSettings().setValue(kRecentKey, files);
  refresh_recent_menu();
}

void SettingsPanel::refresh_recent_menu() {
  if (!recent_menu_) return;
  recent_menu_->clear();
  const QStringList files = recent_files();
  for (const QString& file : files)
    recent_menu_->addAction(QFileInfo(file).fileName(), this, [this, file] {
      if (!maybe_save()) return;
      QString error;
      if (!open_file(file, &error)) QMessageBox::warning(this, tr("Open"), error);
    })->setStatusTip(file);
  recent_menu_->setEnabled(!files.isEmpty());
}

void SettingsPanel::populate_file_menu(QMenu* menu) {
  const QString filter = tr("Studio config (*.json)");
  menu->addAction(tr("&New"), QKeySequence::New, this, [this] {
    if (maybe_save()) new_document();
  });
  menu->addAction(tr("&Open…"), QKeySequence::Open, this, [this, filter] {
    if (!maybe_save()) return;
    const QString path = QFileDialog::getOpenFileName(this, tr("Open settings"), QString(), filter);
    QString error;
    if (!path.isEmpty() && !open_file(path, &error)) QMessageBox::warning(this, tr("Open"), error);
  });
  recent_menu_ = menu->addMenu(tr("Open &Recent"));
  refresh_recent_menu();
  menu->addAction(tr("&Save"), QKeySequence::Save, this, [this, filter] {
    QString path = path_;
    if (path.isEmpty()) path = QFileDialog::getSaveFileName(this, tr("Save settings"), QString(), filter);
    QString error;
    if (!path.isEmpty() && !save_to(path, &error)) QMessageBox::critical(this, tr("Save"), error);
  });
  menu->addAction(tr("Save &As…"), QKeySequence::SaveAs, this, [this, filter] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Save settings as"), path_, filter);
    QString error;
    if (!path.isEmpty() && !save_to(path, &error)) QMessageBox::critical(this, tr("Save"), error);
  });
  menu->addSeparator();
  menu->addAction(tr("&Import SimpleTuner config.json…"), this, [this] {
    if (!maybe_save()) return;
    const QString path = QFileDialog::getOpenFileName(this, tr("Import a SimpleTuner config"), QString(),
                                                      tr("SimpleTuner config (*.json)"));
    QString error;
    if (!path.isEmpty() && !import_simpletuner(path, &error)) QMessageBox::warning(this, tr("Import"), error);
  });
  menu->addAction(tr("&Export for SimpleTuner…"), this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Export config.json and multidatabackend.json to"));
    if (!dir.isEmpty()) export_simpletuner(dir);
  });
  connect(this, &SettingsPanel::export_finished, this, [this](bool ok, const QString& report) {
    // Not modal: the report is something to read while going on working.
    auto* box = new QMessageBox(ok ? QMessageBox::Information : QMessageBox::Warning,
                                ok ? tr("Exported for SimpleTuner") : tr("Export failed"), report, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  });
}

void SettingsPanel::populate_presets_menu(QMenu* menu) {
  for (const repa::config::Preset& preset : repa::config::presets()) {
    const QString name = QString::fromStdString(preset.name);
    QAction* action = menu->addAction(name, this, [this, name] {
      if (maybe_save()) load_preset(name);
    });
    action->setObjectName(QStringLiteral("preset_") + name);
    action->setStatusTip(QString::fromStdString(preset.description));
    action->setToolTip(QString::fromStdString(preset.description));
  }
  if (menu->isEmpty()) menu->addAction(tr("(no presets)"))->setEnabled(false);
}

}  // namespace repa::ui
