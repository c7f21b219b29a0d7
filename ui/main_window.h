// The studio's main window: settings panels on the left, charts, samples and log in the middle, run control
// in the toolbar and status bar. Widgets never train: the worker is a separate process.
#pragma once
#include <QMainWindow>
#include <nlohmann/json.hpp>

#include "ui/run_progress.h"

class QAction;
class QLabel;
class QMenu;
class QPlainTextEdit;
class QPushButton;
class QTabWidget;

namespace repa::ui {

class ChartBoard;
class CompareRunsDialog;
class FailurePanel;
class NativeSupport;
class RunController;
class RunFollower;
class SamplesGallery;
class SettingsPanel;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  ChartBoard* charts() const { return charts_; }
  SamplesGallery* gallery() const { return gallery_; }
  QPlainTextEdit* log_view() const { return log_view_; }
  RunController* controller() const { return controller_; }
  RunFollower* follower() const { return follower_; }
  SettingsPanel* settings() const { return settings_; }
  FailurePanel* failure_panel() const { return failure_panel_; }
  NativeSupport* native_support() const { return native_; }
  QAction* start_action() const { return start_action_; }
  QAction* resume_from_checkpoint_action() const { return resume_checkpoint_action_; }
  RunState shown_state() const { return shown_state_; }
  QString state_text() const;

  // Run control, as the toolbar does it. start_run() validates first, then lists the options in use that the
  // studio's trainer ignores (Continue / Cancel); false when blocked or not started.
  bool start_run();
  bool resume_from_checkpoint();
  bool attach_run(const QString& run_dir);
  // View → Compare Runs: the dialog, with the current run (if any) as run A.
  CompareRunsDialog* open_compare_runs();
  // File → Export Metrics to TensorBoard: the current run's metrics.jsonl as an event file in `directory`.
  QString export_tensorboard(const QString& directory, QString* error = nullptr);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void build_actions();
  void build_menus();
  void build_central();
  void build_status_bar();
  void restore_window_state();
  void launch(nlohmann::json resolved, bool continue_curves);
  bool confirm_ignored_options(const nlohmann::json& resolved);  // true: none, or the user chose Continue
  void on_event(const nlohmann::json& event);
  void on_state(RunState state);
  void update_progress();
  void update_actions();
  void append_log(const QString& line);
  QString run_dir() const;
  QString launch_file_path() const;
  void set_settings_read_only(bool read_only);  // an attached run's config is shown, not edited
  bool can_resume_attached() const;

  ChartBoard* charts_ = nullptr;
  SamplesGallery* gallery_ = nullptr;
  QPlainTextEdit* log_view_ = nullptr;
  QTabWidget* views_ = nullptr;
  SettingsPanel* settings_ = nullptr;
  FailurePanel* failure_panel_ = nullptr;
  RunController* controller_ = nullptr;
  RunFollower* follower_ = nullptr;
  NativeSupport* native_ = nullptr;
  CompareRunsDialog* compare_ = nullptr;
  qint64 sample_requested_at_ = -1;  // Sample now was pressed at this step; its grid has not arrived yet  // Start is off for configs the worker cannot train
  bool following_ = false;  // events come from an attached run directory, not from our own worker
  RunState shown_state_ = RunState::Idle;
  nlohmann::json last_resolved_;

  QAction* start_action_ = nullptr;
  QAction* pause_action_ = nullptr;
  QAction* stop_action_ = nullptr;
  QAction* sample_action_ = nullptr;
  QAction* checkpoint_action_ = nullptr;
  QAction* resume_checkpoint_action_ = nullptr;
  QAction* attach_action_ = nullptr;
  QAction* export_charts_action_ = nullptr;
  QMenu* file_menu_ = nullptr;

  QLabel* state_badge_ = nullptr;
  QLabel* state_line_ = nullptr;  // the run's state in words; temporary messages cover it for a while
  QLabel* step_label_ = nullptr;
  QLabel* speed_label_ = nullptr;
  QLabel* eta_label_ = nullptr;
  QLabel* device_label_ = nullptr;
  QLabel* memory_label_ = nullptr;
};

}  // namespace repa::ui
