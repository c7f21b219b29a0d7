// What Start does when the run folder already holds checkpoints: continue from the newest one, start fresh
// in a new run folder (a free name suggested), or cancel. Without the question a second Start of the same
// preset silently resumes a finished run and ends at once.
#pragma once
#include <QDialog>
#include <nlohmann/json.hpp>

class QLabel;
class QLineEdit;
class QPushButton;

namespace repa::ui {

// The run folder a resolved config trains into: output_dir/studio.run_name (relative to the worker's working
// directory), as the worker's run_directory_for() picks it; empty without a run name (the worker then makes a
// new timestamped folder, so nothing can be resumed by accident).
QString run_folder_of(const nlohmann::json& resolved, const QString& worker_dir);

// The newest complete checkpoint (checkpoints/checkpoint-N holding trainer_state.json) of `run_dir`; its step
// in *step. Empty when there is none.
QString newest_checkpoint(const QString& run_dir, qint64* step = nullptr);

// `name` if output_dir has no such folder, else name-2, name-3, ... the first free one.
QString suggest_run_name(const QString& output_dir, const QString& name);

struct StartPlan {
  bool go = false;
  nlohmann::json resolved;       // what to run (resume_from_checkpoint and studio.run_name decided)
  bool continue_curves = false;  // keep the charts and put the run's history up to `history_step` in them
  QString history_file;          // metrics.jsonl of the continued run
  qint64 history_step = -1;
  QString new_run_name;  // set when starting fresh under a new name
};

// Decides how `resolved` starts; asks with StartDialog when its run folder holds checkpoints and its
// resume_from_checkpoint is "latest" or empty (an explicit checkpoint path is taken as given).
StartPlan plan_start(QWidget* parent, const nlohmann::json& resolved, const QString& worker_dir);

class StartDialog : public QDialog {
  Q_OBJECT

 public:
  enum class Choice { Cancel, Continue, Fresh };
  StartDialog(QWidget* parent, const QString& run_dir, const QString& checkpoint, qint64 checkpoint_step,
              qint64 max_steps, const QString& suggested_name, bool fresh_by_default);

  Choice choice() const { return choice_; }
  QString new_run_name() const;

 private:
  void choose(Choice choice);

  Choice choice_ = Choice::Cancel;
  QLineEdit* name_ = nullptr;
  QLabel* name_problem_ = nullptr;
  QString output_dir_;
};

}  // namespace repa::ui
