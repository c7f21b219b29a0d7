// The settings panels, generated from the option registry: one tab per panel (Loss functions, Model,
// Dataset, Optimizer, Run), fields in the registry's order with its labels, widget kinds, ranges, help
// and visibility rules; each subsection "advanced" in a collapsed group. Options the studio's trainer does
// not use carry a badge and sit apart, at the end of their section, in a collapsed group "Exported to
// SimpleTuner only" (SimpleTuner's order within it). Validator messages sit under the fields they concern:
// problems in red, warnings in amber.
#pragma once
#include <QHash>
#include <QStringList>
#include <QWidget>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/config/registry.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QTabWidget;
class QToolButton;
class QVBoxLayout;

namespace repa::ui {

// Which tab of the studio shows an option.
enum class Panel { LossFunctions, Model, Dataset, Optimizer, Run };
Panel panel_of(const repa::config::OptionSpec& spec);
QString panel_title(Panel panel);

class OptionForm : public QWidget {
  Q_OBJECT

 public:
  explicit OptionForm(QWidget* parent = nullptr);

  // The user's config: only what was set (plus any key the registry does not declare, kept as is).
  void set_config(const nlohmann::json& config);
  const nlohmann::json& config() const { return config_; }
  void set_value(const std::string& key, const nlohmann::json& value);

  // Validator messages at their fields (keys the form does not show are returned as the rest).
  std::vector<repa::config::Problem> show_problems(const std::vector<repa::config::Problem>& problems);
  void focus_field(const std::string& key);

  // The generated fields of one panel in display order, for tests and for placing the schedule preview.
  std::vector<std::string> field_keys(Panel panel) const;
  QWidget* editor(const std::string& key) const;
  QWidget* row(const std::string& key) const;
  QLabel* label(const std::string& key) const;
  QString problem_text(const std::string& key) const;
  bool is_shown(const std::string& key) const;          // the visibility rules say so
  bool in_advanced_group(const std::string& key) const;
  bool in_export_only_group(const std::string& key) const;  // grouped apart: the trainer does not use it
  QLabel* badge(const std::string& key) const;  // the "SimpleTuner only" badge, or nullptr for honoured options
  // A widget placed under the given field of the Loss functions panel (the schedule preview).
  void insert_after(const std::string& key, QWidget* widget);
  QTabWidget* tabs() const { return tabs_; }

  // The search over every field (label, key, help, choice labels; every word must match): the keys found,
  // best first. Typing in the search box lists them; Enter or a click opens the field with its help.
  QStringList search(const QString& query) const;
  QLineEdit* search_box() const { return search_box_; }
  QListWidget* search_results() const { return search_results_; }
  void show_help(const std::string& key, bool open);
  QLabel* help_label(const std::string& key) const;  // the help under the field (hidden until (?) is pressed)

 signals:
  void config_edited();

 private:
  struct Field {
    const repa::config::OptionSpec* spec = nullptr;
    QWidget* row = nullptr;      // label + editor + message, hidden by visibility rules
    QLabel* label = nullptr;
    QWidget* editor = nullptr;
    QLabel* message = nullptr;   // validator message
    QLabel* badge = nullptr;     // options the studio's trainer does not use (always or under a condition)
    QToolButton* help_button = nullptr;  // (?) opens the help under the field
    QLabel* help = nullptr;
    bool advanced = false;
    bool export_only = false;
    Panel panel = Panel::Run;
  };

  void build();
  Field make_field(const repa::config::OptionSpec& spec, QWidget* parent);
  QWidget* make_editor(const repa::config::OptionSpec& spec, QWidget* parent);
  void load_editor(const Field& field);
  bool is_given(const std::string& key) const;  // the user's config sets it (else the default shows)
  void show_default_look(const Field& field);
  void update_visibility();
  void edited(const std::string& key, const nlohmann::json& value);
  void update_search(const QString& query);
  void open_search_result(QListWidgetItem* item);

  QTabWidget* tabs_ = nullptr;
  QLineEdit* search_box_ = nullptr;
  QListWidget* search_results_ = nullptr;
  std::vector<Field> fields_;
  QHash<QString, int> index_;
  nlohmann::json config_ = nlohmann::json::object();
  bool loading_ = false;
};

}  // namespace repa::ui
