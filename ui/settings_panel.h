// The settings dock: the generated option panels, the schedule preview, a summary of what blocks Start,
// and the config document behind them (New/Open/Save/Save As, presets, recent files, SimpleTuner
// import and export).
#pragma once
#include <QStringList>
#include <QWidget>
#include <nlohmann/json.hpp>

class QLabel;
class QMenu;
class QProcess;

namespace repa::ui {

class OptionForm;
class SchedulePreview;

class SettingsPanel : public QWidget {
  Q_OBJECT

 public:
  explicit SettingsPanel(QWidget* parent = nullptr);

  OptionForm* form() const { return form_; }
  SchedulePreview* schedule_preview() const { return preview_; }

  // The document.
  void new_document();
  bool open_file(const QString& path, QString* error = nullptr);
  bool save_to(const QString& path, QString* error = nullptr);
  bool load_preset(const QString& name);
  // A SimpleTuner config.json: "--" prefixes and old aliases become the registry's names; every key is kept
  // but those SimpleTuner's own loader drops. A report lists those and every warning (options the studio's
  // trainer ignores); import_warnings() keeps them.
  bool import_simpletuner(const QString& path, QString* error = nullptr);
  QStringList import_warnings() const { return import_warnings_; }
  // `repa-train export` into `directory`; the report (what was dropped) arrives with export_finished.
  void export_simpletuner(const QString& directory);
  QString document_title() const;
  QString file_path() const { return path_; }
  bool is_modified() const { return modified_; }
  bool maybe_save();  // asks before losing edits; false = cancel
  QStringList recent_files() const;

  // Resolves and validates; marks problems and warnings at the fields. Returns the number of problems that
  // block Start (warnings do not: 0 = can start).
  int check(nlohmann::json* resolved = nullptr);
  void show_first_problem();
  QString problem_summary() const;

  void populate_file_menu(QMenu* menu);
  void populate_presets_menu(QMenu* menu);

 signals:
  void document_changed();
  void export_finished(bool ok, const QString& report);

 private:
  void set_document(const nlohmann::json& config, const QString& path, const QString& title);
  void remember_recent(const QString& path);
  void refresh_recent_menu();
  void on_edited();
  void place_preview();

  OptionForm* form_ = nullptr;
  SchedulePreview* preview_ = nullptr;
  QLabel* summary_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  QString path_;
  QString title_;
  bool modified_ = false;
  std::string first_problem_key_;
  QStringList import_warnings_;
  QProcess* export_process_ = nullptr;
};

}  // namespace repa::ui
