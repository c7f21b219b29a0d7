#include "ui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDateTime>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScreen>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStyle>
#include <QTabWidget>
#include <QToolBar>
#include <QVBoxLayout>
#include <algorithm>

#include "core/base/version.h"
#include "core/config/trainer_support.h"
#include "ui/chart_board.h"
#include "ui/compare_runs.h"
#include "ui/failure_panel.h"
#include "ui/json_fields.h"
#include "ui/metrics_file.h"
#include "ui/native_support.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/run_follower.h"
#include "ui/samples_gallery.h"
#include "ui/settings_panel.h"
#include "ui/start_dialog.h"

namespace repa::ui {
namespace {

// The run's state in words, in whatever width the status bar has left. A line longer than that (a failure's
// reason, a finished run's output paths) is cut in the middle, so its start and the end of its last path stay
// in view, and its tooltip holds it whole.
class StatusLine : public QLabel {
 public:
  using QLabel::QLabel;
  QSize minimumSizeHint() const override { return {0, QLabel::minimumSizeHint().height()}; }
  QSize sizeHint() const override { return {0, QLabel::sizeHint().height()}; }

 protected:
  void paintEvent(QPaintEvent*) override {
    const QRect area = contentsRect();
    const QString shown = fontMetrics().elidedText(text(), Qt::ElideMiddle, area.width());
    const QString tip = shown == text() ? QString() : text();
    if (toolTip() != tip) setToolTip(tip);
    QPainter painter(this);
    style()->drawItemText(&painter, area, static_cast<int>(alignment()), palette(), isEnabled(), shown,
                          foregroundRole());
  }
};

QString badge_style(RunState state) {
  QString color = QStringLiteral("#777");
  switch (state) {
    case RunState::Running:
      color = QStringLiteral("#2e7d32");
      break;
    case RunState::Starting:
    case RunState::Stopping:
      color = QStringLiteral("#1565c0");
      break;
    case RunState::Paused:
      color = QStringLiteral("#ef6c00");
      break;
    case RunState::Stalled:
    case RunState::Failed:
      color = QStringLiteral("#c62828");
      break;
    default:
      break;
  }
  return QStringLiteral(
             "QLabel { color: white; background: %1; border-radius: 4px; padding: 2px 8px; "
             "font-weight: bold; }")
      .arg(color);
}

bool is_live(RunState s) {
  return s == RunState::Starting || s == RunState::Running || s == RunState::Paused || s == RunState::Stopping ||
         s == RunState::Stalled;
}

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(QStringLiteral("REPA Studio"));
  setWindowIcon(QIcon(QStringLiteral(":/icons/repa-studio.svg")));
  setObjectName(QStringLiteral("mainWindow"));
  controller_ = new RunController(this);
  follower_ = new RunFollower(this);
  build_actions();
  build_central();
  native_ = new NativeSupport(settings_, this);
  build_menus();
  build_status_bar();

  connect(controller_, &RunController::event_received, this, &MainWindow::on_event);
  connect(controller_, &RunController::log_line, this, &MainWindow::append_log);
  connect(controller_, &RunController::progress_changed, this, &MainWindow::update_progress);
  connect(controller_, &RunController::state_changed, this, &MainWindow::on_state);
  connect(controller_, &RunController::failed, this, [this](const QString& reason) {
    // Exit code 2 is a bad config: resuming would fail the same way.
    failure_panel_->show_failure(reason, controller_->recent_log(), controller_->exit_code() != 2);
    state_line_->setText(reason);
  });
  connect(controller_, &RunController::ended, this, &MainWindow::update_actions);
  connect(follower_, &RunFollower::event_received, this, &MainWindow::on_event);
  connect(follower_, &RunFollower::log_line, this, &MainWindow::append_log);
  connect(follower_, &RunFollower::progress_changed, this, &MainWindow::update_progress);
  connect(follower_, &RunFollower::state_changed, this, &MainWindow::on_state);
  connect(follower_, &RunFollower::state_changed, this, [this](RunState state) {
    if (state != RunState::Failed || follower_->failure_reason().isEmpty()) return;
    failure_panel_->show_failure(follower_->failure_reason(), {}, can_resume_attached());
    state_line_->setText(follower_->failure_reason());
  });
  connect(failure_panel_, &FailurePanel::resume_requested, this, &MainWindow::resume_from_checkpoint);
  connect(native_, &NativeSupport::changed, this, [this](const QString& blocker) {
    if (blocker.isEmpty())
      statusBar()->clearMessage();
    else
      statusBar()->showMessage(tr("Start is off: %1").arg(blocker));
    update_actions();
  });

  resize(1440, 900);
  restore_window_state();
  update_actions();
}

MainWindow::~MainWindow() {
  // The worker is stopped before the widgets it reports to go away.
  controller_->disconnect(this);
  follower_->disconnect(this);
  delete controller_;
  controller_ = nullptr;
}

void MainWindow::build_actions() {
  start_action_ = new QAction(style()->standardIcon(QStyle::SP_MediaPlay), tr("Start"), this);
  start_action_->setObjectName(QStringLiteral("actionStart"));
  start_action_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
  start_action_->setToolTip(tr("Validate the settings and start training in a separate worker process"));
  connect(start_action_, &QAction::triggered, this, &MainWindow::start_run);

  // Pause / Continue holds the live worker; Resume from Checkpoint starts a new one from a saved step.
  pause_action_ = new QAction(style()->standardIcon(QStyle::SP_MediaPause), tr("Pause"), this);
  pause_action_->setObjectName(QStringLiteral("actionPause"));
  pause_action_->setCheckable(true);
  pause_action_->setToolTip(tr("Hold the running worker after its current step (Continue goes on)"));
  connect(pause_action_, &QAction::triggered, this, [this](bool checked) {
    if (checked)
      controller_->pause();
    else
      controller_->resume();
  });

  stop_action_ = new QAction(style()->standardIcon(QStyle::SP_MediaStop), tr("Stop"), this);
  stop_action_->setObjectName(QStringLiteral("actionStop"));
  stop_action_->setToolTip(tr("Checkpoint and stop (press again to stop without waiting for the step)"));
  connect(stop_action_, &QAction::triggered, controller_, &RunController::stop);

  sample_action_ = new QAction(tr("Sample now"), this);
  sample_action_->setObjectName(QStringLiteral("actionSample"));
  sample_action_->setToolTip(tr("Draw a sample grid after the current step; it appears in the Samples tab"));
  connect(sample_action_, &QAction::triggered, this, [this] {
    sample_requested_at_ = std::max<qint64>(0, controller_->progress().step);
    controller_->request_sample();
    sample_action_->setEnabled(false);  // until the grid arrives: one request at a time, and visibly taken
    statusBar()->showMessage(tr("Drawing a sample grid after step %1…").arg(sample_requested_at_));
  });

  checkpoint_action_ = new QAction(tr("Checkpoint now"), this);
  checkpoint_action_->setObjectName(QStringLiteral("actionCheckpoint"));
  connect(checkpoint_action_, &QAction::triggered, controller_, &RunController::request_checkpoint);

  resume_checkpoint_action_ =
      new QAction(style()->standardIcon(QStyle::SP_BrowserReload), tr("Resume from Checkpoint"), this);
  resume_checkpoint_action_->setObjectName(QStringLiteral("actionResumeCheckpoint"));
  resume_checkpoint_action_->setToolTip(tr("Start the last run again from its latest checkpoint"));
  connect(resume_checkpoint_action_, &QAction::triggered, this, &MainWindow::resume_from_checkpoint);

  attach_action_ = new QAction(tr("Open &Run Directory…"), this);
  attach_action_->setObjectName(QStringLiteral("actionAttach"));
  connect(attach_action_, &QAction::triggered, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open a run directory"));
    if (!dir.isEmpty() && !attach_run(dir))
      QMessageBox::warning(this, tr("Not a run directory"),
                           tr("%1 has no events.jsonl, metrics.jsonl, status.json or config.json.").arg(dir));
  });

  export_charts_action_ = new QAction(tr("Export Charts (PNG + CSV)…"), this);
  connect(export_charts_action_, &QAction::triggered, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Export charts to"));
    if (dir.isEmpty()) return;
    const QStringList files = charts_->export_all(dir);
    statusBar()->showMessage(tr("%1 files written to %2").arg(files.size()).arg(dir), 5000);
  });

  auto* toolbar = addToolBar(tr("Run"));
  toolbar->setObjectName(QStringLiteral("runToolbar"));
  toolbar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  toolbar->addAction(start_action_);
  toolbar->addAction(pause_action_);
  toolbar->addAction(stop_action_);
  toolbar->addSeparator();
  toolbar->addAction(sample_action_);
  toolbar->addAction(checkpoint_action_);
  toolbar->addAction(resume_checkpoint_action_);
  toolbar->addSeparator();
  state_badge_ = new QLabel(this);
  state_badge_->setObjectName(QStringLiteral("stateBadge"));
  toolbar->addWidget(state_badge_);
}

void MainWindow::build_menus() {
  file_menu_ = menuBar()->addMenu(tr("&File"));
  settings_->populate_file_menu(file_menu_);
  file_menu_->addSeparator();
  file_menu_->addAction(attach_action_);
  file_menu_->addAction(export_charts_action_);
  file_menu_
      ->addAction(tr("Export Metrics to &TensorBoard…"), this,
                  [this] {
                    const QString dir =
                        QFileDialog::getExistingDirectory(this, tr("Write the TensorBoard event file to"));
                    if (dir.isEmpty()) return;
                    QString error;
                    const QString file = export_tensorboard(dir, &error);
                    if (file.isEmpty())
                      QMessageBox::warning(this, tr("TensorBoard export"), error);
                    else
                      statusBar()->showMessage(tr("Wrote %1 (tensorboard --logdir %2)").arg(file, dir), 8000);
                  })
      ->setObjectName(QStringLiteral("actionExportTensorBoard"));
  file_menu_->addSeparator();
  auto* quit = file_menu_->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  QMenu* presets = menuBar()->addMenu(tr("&Presets"));
  settings_->populate_presets_menu(presets);
  native_->mark_presets(presets);

  auto* run = menuBar()->addMenu(tr("&Run"));
  for (QAction* a :
       {start_action_, pause_action_, stop_action_, sample_action_, checkpoint_action_, resume_checkpoint_action_})
    run->addAction(a);

  auto* view = menuBar()->addMenu(tr("&View"));
  view->addAction(tr("Reset Chart Views"), charts_, &ChartBoard::reset_views);
  view->addAction(tr("&Compare Runs…"), this, &MainWindow::open_compare_runs)
      ->setObjectName(QStringLiteral("actionCompareRuns"));

  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About REPA Studio"), this, [this] {
    QMessageBox::about(this, tr("About REPA Studio"),
                       tr("<b>REPA Studio %1</b><p>Train diffusion models with representation alignment "
                          "(REPA, U-REPA).</p><p>Worker: %2</p><p>GPL-3.0-or-later.</p>")
                           .arg(QString::fromLatin1(repa::kVersion), controller_->program()));
  });
}

void MainWindow::build_central() {
  charts_ = new ChartBoard(this);
  gallery_ = new SamplesGallery(this);
  log_view_ = new QPlainTextEdit(this);
  log_view_->setObjectName(QStringLiteral("logView"));
  log_view_->setReadOnly(true);
  log_view_->setMaximumBlockCount(5000);
  log_view_->setFont(QFont(QStringLiteral("monospace"), 9));

  views_ = new QTabWidget(this);
  views_->setObjectName(QStringLiteral("views"));
  views_->addTab(charts_, tr("Charts"));
  views_->addTab(gallery_, tr("Samples"));
  views_->addTab(log_view_, tr("Log"));

  failure_panel_ = new FailurePanel(this);
  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(failure_panel_);
  layout->addWidget(views_, 1);
  setCentralWidget(central);

  settings_ = new SettingsPanel(this);
  auto* dock = new QDockWidget(tr("Settings"), this);
  dock->setObjectName(QStringLiteral("settingsDock"));
  dock->setWidget(settings_);
  dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, dock);
  connect(settings_, &SettingsPanel::document_changed, this,
          [this] { setWindowTitle(settings_->document_title() + QStringLiteral(" — REPA Studio")); });
}

void MainWindow::build_status_bar() {
  auto add = [this](const char* name, const QString& tip) {
    auto* label = new QLabel(this);
    label->setObjectName(QString::fromLatin1(name));
    label->setToolTip(tip);
    label->setMinimumWidth(60);
    statusBar()->addPermanentWidget(label);
    return label;
  };
  step_label_ = add("statusStep", tr("Optimizer step / planned steps"));
  speed_label_ = add("statusSpeed", tr("Optimizer steps per second"));
  eta_label_ = add("statusEta", tr("Estimated time to the last step"));
  device_label_ = add("statusDevice", tr("Device the worker trains on"));
  memory_label_ = add("statusMemory", tr("Memory the worker reports"));
  state_line_ = new StatusLine(tr("REPA Studio %1 — no run").arg(QString::fromLatin1(repa::kVersion)), this);
  state_line_->setObjectName(QStringLiteral("statusLine"));
  statusBar()->addWidget(state_line_, 1);
  on_state(RunState::Idle);
}

QString MainWindow::state_text() const {
  return state_badge_->text();
}

QString MainWindow::launch_file_path() const {
  const QString dir =
      QStandardPaths::writableLocation(QStandardPaths::AppLocalDataLocation) + QStringLiteral("/launches");
  QDir().mkpath(dir);
  return QDir(dir).filePath(
      QStringLiteral("run-%1.json").arg(QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss-zzz"))));
}

bool MainWindow::start_run() {
  if (controller_->is_active()) return false;
  if (!native_->blocker().isEmpty()) {
    statusBar()->showMessage(tr("Start is off: %1").arg(native_->blocker()));
    return false;
  }
  nlohmann::json resolved;
  const int problems = settings_->check(&resolved);
  if (problems > 0) {
    statusBar()->showMessage(tr("Not started: %n setting(s) need attention (marked in the panels)", nullptr, problems));
    settings_->show_first_problem();
    return false;
  }
  if (!confirm_ignored_options(resolved)) {
    statusBar()->showMessage(tr("Not started"));
    return false;
  }
  // A run folder with checkpoints: continue, start fresh under a new name, or cancel (ui/start_dialog.h).
  StartPlan plan = plan_start(this, resolved, QDir::currentPath());
  if (!plan.go) {
    statusBar()->showMessage(tr("Not started"));
    return false;
  }
  if (!plan.new_run_name.isEmpty()) settings_->form()->set_value("studio.run_name", plan.new_run_name.toStdString());
  if (plan.continue_curves) {
    // The continued run's history up to its checkpoint, so a run that ends at once still shows its curves.
    charts_->clear();
    gallery_->clear_samples();
    for (const nlohmann::json& row : read_metrics_file(plan.history_file, plan.history_step).rows)
      charts_->add_metrics(row);
    gallery_->scan(QFileInfo(plan.history_file).dir().filePath(QStringLiteral("samples")));
  }
  launch(std::move(plan.resolved), plan.continue_curves);
  return true;
}

bool MainWindow::confirm_ignored_options(const nlohmann::json& resolved) {
  const auto ignored = repa::config::ignored_by_trainer(resolved);
  if (ignored.empty()) return true;
  QStringList lines;
  for (const auto& option : ignored)
    lines << QStringLiteral("• ") + QString::fromStdString(repa::config::describe(option));
  QMessageBox box(QMessageBox::Warning, tr("Settings the studio's trainer ignores"),
                  tr("%n setting(s) in use are exported to SimpleTuner but not used by the studio's trainer; "
                     "this run trains without them.",
                     nullptr, static_cast<int>(ignored.size())),
                  QMessageBox::NoButton, this);
  box.setObjectName(QStringLiteral("ignoredOptionsDialog"));
  box.setInformativeText(lines.join(QLatin1Char('\n')));
  QPushButton* go = box.addButton(tr("Continue"), QMessageBox::AcceptRole);
  go->setObjectName(QStringLiteral("continueButton"));
  box.addButton(QMessageBox::Cancel)->setObjectName(QStringLiteral("cancelButton"));
  box.setDefaultButton(go);
  box.exec();
  return box.clickedButton() == go;
}

bool MainWindow::can_resume_attached() const {
  const RunState s = follower_->state();
  return following_ && follower_->progress().config.is_object() && (s == RunState::Failed || s == RunState::Stopped) &&
         !newest_checkpoint(follower_->run_dir()).isEmpty();
}

bool MainWindow::resume_from_checkpoint() {
  if (controller_->is_active()) return false;
  nlohmann::json resolved = last_resolved_;
  if (following_) {
    // An attached run resumes in its own folder, from its own config.json.
    if (!can_resume_attached()) return false;
    const QFileInfo dir(follower_->run_dir());
    resolved = follower_->progress().config;
    resolved["output_dir"] = dir.path().toStdString();
    resolved["studio"]["run_name"] = dir.fileName().toStdString();
  }
  if (!resolved.is_object()) return false;
  resolved["resume_from_checkpoint"] = "latest";
  launch(std::move(resolved), true);
  return true;
}

void MainWindow::launch(nlohmann::json resolved, bool continue_curves) {
  if (following_) {
    follower_->detach();
    following_ = false;
    set_settings_read_only(false);
  }
  const QString path = launch_file_path();
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
      file.write(QByteArray::fromStdString(resolved.dump(2))) < 0) {
    QMessageBox::critical(this, tr("Cannot start"),
                          tr("Could not write the run config %1: %2").arg(path, file.errorString()));
    return;
  }
  file.close();
  last_resolved_ = resolved;
  failure_panel_->hide();
  // A resumed run continues the same curves; a fresh run starts empty ones.
  if (!continue_curves) {
    charts_->clear();
    gallery_->clear_samples();
  }
  charts_->set_run_config(resolved);
  pause_action_->setChecked(false);
  controller_->start(path);
  update_actions();
}

void MainWindow::set_settings_read_only(bool read_only) {
  for (Panel panel : {Panel::LossFunctions, Panel::Model, Panel::Dataset, Panel::Optimizer, Panel::Run})
    for (const std::string& key : settings_->form()->field_keys(panel))
      if (QWidget* editor = settings_->form()->editor(key)) editor->setEnabled(!read_only);
  if (read_only)
    setWindowTitle(tr("%1 (read-only) — REPA Studio").arg(QDir::toNativeSeparators(follower_->run_dir())));
  else
    setWindowTitle(settings_->document_title() + QStringLiteral(" — REPA Studio"));
}

bool MainWindow::attach_run(const QString& run_dir) {
  if (controller_->is_active()) return false;
  // The panels show the attached run's own config.json; the open document is saved or dropped first.
  if (!settings_->maybe_save()) return false;
  charts_->clear();
  gallery_->clear_samples();
  log_view_->clear();
  failure_panel_->hide();
  following_ = true;
  if (!follower_->attach(run_dir)) {
    following_ = false;
    return false;
  }
  charts_->set_run_config(follower_->progress().config);
  gallery_->scan(QDir(run_dir).filePath(QStringLiteral("samples")));
  settings_->new_document();
  if (follower_->progress().config.is_object()) settings_->form()->set_config(follower_->progress().config);
  set_settings_read_only(true);
  statusBar()->showMessage(tr("Following %1").arg(run_dir));
  update_progress();
  update_actions();
  return true;
}

CompareRunsDialog* MainWindow::open_compare_runs() {
  if (!compare_) {
    compare_ = new CompareRunsDialog(this);
    const QString current = run_dir();
    if (!current.isEmpty() && QFileInfo::exists(QDir(current).filePath(QStringLiteral("metrics.jsonl"))))
      compare_->set_run(0, current);
  }
  compare_->show();
  compare_->raise();
  return compare_;
}

QString MainWindow::export_tensorboard(const QString& directory, QString* error) {
  const QString current = run_dir();
  if (current.isEmpty()) {
    if (error) *error = tr("No run to export: start one or open a run directory first.");
    return {};
  }
  const MetricsFile metrics = read_metrics_file(current);
  if (!metrics.error.isEmpty()) {
    if (error) *error = metrics.error;
    return {};
  }
  return export_to_tensorboard(metrics, directory, error);
}

QString MainWindow::run_dir() const {
  const RunProgress& p = following_ ? follower_->progress() : controller_->progress();
  if (!p.run_dir.isEmpty()) return p.run_dir;
  if (last_resolved_.is_object()) {
    const QString out = QString::fromStdString(last_resolved_.value("output_dir", std::string()));
    return out;
  }
  return {};
}

void MainWindow::on_event(const nlohmann::json& event) {
  const std::string type = text_field(event, "type");
  if (type == "metrics") {
    charts_->add_metrics(event);
  } else if (type == "run_started") {
    if (event.contains("config") && event["config"].is_object()) charts_->set_run_config(event["config"]);
  } else if (type == "sample") {
    if (sample_requested_at_ >= 0) {
      statusBar()->showMessage(
          tr("Sample grid of step %1 is in the Samples tab").arg(int_field(event, "step").value_or(-1)), 8000);
      sample_requested_at_ = -1;
      update_actions();
    }
    // The worker's paths are relative to where it runs, not to the run folder (which they already include).
    const QString path = resolve_sample_path(QString::fromStdString(text_field(event, "path")),
                                             following_ ? QString() : controller_->working_directory(), run_dir());
    const nlohmann::json& config = following_ ? follower_->progress().config : last_resolved_;
    if (!path.isEmpty()) gallery_->add_sample_event(path, event, int_field(config, "seed").value_or(-1));
  } else if (type == "checkpoint") {
    statusBar()->showMessage(tr("Checkpoint saved: %1").arg(QString::fromStdString(text_field(event, "path"))), 5000);
  } else if (type == "error") {
    statusBar()->showMessage(tr("Worker error: %1").arg(QString::fromStdString(text_field(event, "message"))));
  }
}

void MainWindow::on_state(RunState state) {
  shown_state_ = state;
  state_badge_->setText(state_name(state));
  state_badge_->setStyleSheet(badge_style(state));
  if (state == RunState::Stalled)
    state_line_->setText(tr("No heartbeat from the worker: the run may be hung (it is not shown as running)"));
  // Each state replaces the last line, so no "no run" while training and no old failure after a resume.
  if (const QString message = state_message(state, following_ ? follower_->progress() : controller_->progress());
      !message.isEmpty()) {
    statusBar()->clearMessage();  // an older "Not started" or worker error would cover the new state
    state_line_->setText(message);
  }
  if (pause_action_) {
    pause_action_->setChecked(state == RunState::Paused);
    pause_action_->setText(state == RunState::Paused ? tr("Continue") : tr("Pause"));
    pause_action_->setIcon(
        style()->standardIcon(state == RunState::Paused ? QStyle::SP_MediaPlay : QStyle::SP_MediaPause));
  }
  if (!is_live(state)) sample_requested_at_ = -1;
  update_progress();
  update_actions();
}

void MainWindow::update_progress() {
  const RunProgress& p = following_ ? follower_->progress() : controller_->progress();
  step_label_->setText(p.step < 0        ? QString()
                       : p.max_steps > 0 ? tr("step %1 / %2").arg(p.step).arg(p.max_steps)
                                         : tr("step %1").arg(p.step));
  // Speed and ETA describe a moving run only: not a paused, stopped or failed one.
  const bool moving = shown_state_ == RunState::Running;
  speed_label_->setText(moving && p.steps_per_sec > 0
                            ? tr("%1 it/s").arg(p.steps_per_sec, 0, 'f', p.steps_per_sec < 10 ? 2 : 1)
                            : QString());
  const QString eta = moving ? p.eta_text() : QString();
  eta_label_->setText(eta.isEmpty() ? QString() : tr("ETA %1").arg(eta));
  device_label_->setText(p.device);
  memory_label_->setText(p.memory_text());
}

void MainWindow::update_actions() {
  if (!start_action_) return;
  const bool own = controller_->is_active();
  const bool live = own && is_live(shown_state_);
  start_action_->setEnabled(!own && native_->blocker().isEmpty());
  start_action_->setToolTip(native_->blocker().isEmpty()
                                ? tr("Validate the settings and start training in a separate worker process")
                                : tr("The studio's worker cannot train this config: %1").arg(native_->blocker()));
  pause_action_->setEnabled(live && shown_state_ != RunState::Stopping);
  stop_action_->setEnabled(own);
  sample_action_->setEnabled(live && sample_requested_at_ < 0);
  checkpoint_action_->setEnabled(live);
  resume_checkpoint_action_->setEnabled(
      !own && (following_ ? can_resume_attached()
                          : last_resolved_.is_object() && controller_->exit_code() != 2 &&
                                (shown_state_ == RunState::Failed || shown_state_ == RunState::Stopped)));
  attach_action_->setEnabled(!own);
}

void MainWindow::append_log(const QString& line) {
  log_view_->appendPlainText(line);
}

void MainWindow::restore_window_state() {
  QSettings settings;
  if (settings.contains(QStringLiteral("window/geometry")))
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
  const bool saved_docks = settings.contains(QStringLiteral("window/state"));
  if (saved_docks) restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
  // Inside the available screen whatever was saved or asked (1440x900 does not fit a 1280x800 laptop; the
  // margins leave room for the title bar); the settings dock about a quarter of the width.
  if (const QScreen* shown_on = screen()) {
    const QRect available = shown_on->availableGeometry();
    resize(std::min(width(), available.width() - 16), std::min(height(), available.height() - 48));
    if (!available.contains(frameGeometry())) move(available.topLeft());
  }
  if (!saved_docks)
    if (auto* dock = findChild<QDockWidget*>(QStringLiteral("settingsDock")))
      resizeDocks({dock}, {std::clamp(width() * 27 / 100, 360, 460)}, Qt::Horizontal);
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (controller_->is_active()) {
    const auto answer = QMessageBox::question(this, tr("Training is running"),
                                              tr("Stop the run (it saves a checkpoint) and close the window?"),
                                              QMessageBox::Yes | QMessageBox::No);
    if (answer != QMessageBox::Yes) {
      event->ignore();
      return;
    }
  }
  if (!settings_->maybe_save()) {
    event->ignore();
    return;
  }
  QSettings settings;
  settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
  settings.setValue(QStringLiteral("window/state"), saveState());
  event->accept();
}

}  // namespace repa::ui
