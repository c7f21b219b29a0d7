#include "ui/start_dialog.h"

#include <QDialogButtonBox>
#include <QDir>
#include <QFileInfo>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QVBoxLayout>

namespace repa::ui {
namespace {

QString text_at(const nlohmann::json& object, const char* key) {
  const auto it = object.is_object() ? object.find(key) : object.end();
  return it != object.end() && it->is_string() ? QString::fromStdString(it->get<std::string>()) : QString();
}

QString output_dir_of(const nlohmann::json& resolved, const QString& worker_dir) {
  QString output = text_at(resolved, "output_dir");
  if (output.isEmpty()) output = QStringLiteral("runs");  // the worker's default
  return QDir::cleanPath(QDir(worker_dir).filePath(output));
}

}  // namespace

QString run_folder_of(const nlohmann::json& resolved, const QString& worker_dir) {
  const QString name =
      text_at(resolved.is_object() ? resolved.value("studio", nlohmann::json()) : nlohmann::json(), "run_name");
  if (name.isEmpty()) return {};
  return QDir(output_dir_of(resolved, worker_dir)).filePath(name);
}

QString newest_checkpoint(const QString& run_dir, qint64* step) {
  static const QRegularExpression pattern(QStringLiteral("^checkpoint-(\\d+)$"));
  QString best;
  qint64 best_step = -1;
  const QDir checkpoints(QDir(run_dir).filePath(QStringLiteral("checkpoints")));
  for (const QString& name : checkpoints.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
    const auto match = pattern.match(name);
    // Only complete ones: trainer_state.json is written last (core/train/checkpoint.cpp).
    if (!match.hasMatch() || !QFileInfo::exists(checkpoints.filePath(name + QStringLiteral("/trainer_state.json"))))
      continue;
    const qint64 s = match.captured(1).toLongLong();
    if (s > best_step) {
      best_step = s;
      best = checkpoints.filePath(name);
    }
  }
  if (step) *step = best_step;
  return best;
}

QString suggest_run_name(const QString& output_dir, const QString& name) {
  const QDir dir(output_dir);
  if (!dir.exists(name)) return name;
  // "demo-3" suggests "demo-4", not "demo-3-2".
  static const QRegularExpression numbered(QStringLiteral("^(.*)-(\\d+)$"));
  const auto match = numbered.match(name);
  const QString base = match.hasMatch() ? match.captured(1) : name;
  for (int n = match.hasMatch() ? match.captured(2).toInt() + 1 : 2;; ++n) {
    const QString candidate = QStringLiteral("%1-%2").arg(base).arg(n);
    if (!dir.exists(candidate)) return candidate;
  }
}

StartDialog::StartDialog(QWidget* parent, const QString& run_dir, const QString& checkpoint, qint64 checkpoint_step,
                         qint64 max_steps, const QString& suggested_name, bool fresh_by_default)
    : QDialog(parent), output_dir_(QFileInfo(run_dir).path()) {
  setObjectName(QStringLiteral("startChoiceDialog"));
  setWindowTitle(tr("The run folder holds checkpoints"));
  const QString checkpoint_name = QFileInfo(checkpoint).fileName();
  QString text = tr("<p>The run folder <b>%1</b> already holds <b>%2</b> (step %3).</p>")
                     .arg(QDir::toNativeSeparators(run_dir).toHtmlEscaped(), checkpoint_name)
                     .arg(checkpoint_step);
  if (max_steps > 0 && checkpoint_step >= max_steps)
    text += tr("<p>It has reached Max Train Steps (%1): continuing ends at once. Raise Max Train Steps to "
               "train it further.</p>")
                .arg(max_steps);
  auto* message = new QLabel(text, this);
  message->setObjectName(QStringLiteral("startChoiceText"));
  message->setWordWrap(true);

  name_ = new QLineEdit(suggested_name, this);
  name_->setObjectName(QStringLiteral("newRunName"));
  name_problem_ = new QLabel(this);
  name_problem_->setObjectName(QStringLiteral("newRunNameProblem"));
  name_problem_->setStyleSheet(QStringLiteral("QLabel { color: #c62828; }"));
  name_problem_->hide();
  auto* form = new QFormLayout;
  form->addRow(tr("New run name:"), name_);
  form->addRow(QString(), name_problem_);

  auto* buttons = new QDialogButtonBox(this);
  QPushButton* go_on = buttons->addButton(tr("Continue from %1").arg(checkpoint_name), QDialogButtonBox::AcceptRole);
  go_on->setObjectName(QStringLiteral("continueCheckpointButton"));
  go_on->setToolTip(tr("Load %1 and train on to Max Train Steps; the charts keep its history").arg(checkpoint_name));
  QPushButton* fresh = buttons->addButton(tr("Start Fresh in a New Run Folder"), QDialogButtonBox::AcceptRole);
  fresh->setObjectName(QStringLiteral("startFreshButton"));
  fresh->setToolTip(tr("Train from scratch into the run folder named below; the old run stays as it is"));
  QPushButton* cancel = buttons->addButton(QDialogButtonBox::Cancel);
  cancel->setObjectName(QStringLiteral("cancelButton"));
  (fresh_by_default ? fresh : go_on)->setDefault(true);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(message);
  layout->addLayout(form);
  layout->addWidget(buttons);
  connect(go_on, &QPushButton::clicked, this, [this] { choose(Choice::Continue); });
  connect(fresh, &QPushButton::clicked, this, [this] { choose(Choice::Fresh); });
  connect(cancel, &QPushButton::clicked, this, [this] { choose(Choice::Cancel); });
  connect(name_, &QLineEdit::textEdited, name_problem_, &QWidget::hide);
}

QString StartDialog::new_run_name() const {
  return name_->text().trimmed();
}

void StartDialog::choose(Choice choice) {
  if (choice == Choice::Fresh) {
    const QString name = new_run_name();
    QString problem;
    if (name.isEmpty() || name.contains(QLatin1Char('/')) || name.contains(QLatin1Char('\\')) ||
        name == QStringLiteral(".") || name == QStringLiteral(".."))
      problem = tr("A run name is one folder name (no slashes).");
    else if (QDir(output_dir_).exists(name))
      problem =
          tr("%1 exists already; pick another name (suggested: %2).").arg(name, suggest_run_name(output_dir_, name));
    if (!problem.isEmpty()) {
      name_problem_->setText(problem);
      name_problem_->show();
      name_->setFocus();
      return;
    }
  }
  choice_ = choice;
  if (choice == Choice::Cancel)
    reject();
  else
    accept();
}

StartPlan plan_start(QWidget* parent, const nlohmann::json& resolved, const QString& worker_dir) {
  StartPlan plan;
  plan.go = true;
  plan.resolved = resolved;
  const auto resume_it = resolved.find("resume_from_checkpoint");
  const QString resume = resume_it != resolved.end() && resume_it->is_string()
                             ? QString::fromStdString(resume_it->get<std::string>())
                             : QString();
  const QString run_dir = run_folder_of(resolved, worker_dir);
  qint64 step = -1;
  const QString checkpoint = run_dir.isEmpty() ? QString() : newest_checkpoint(run_dir, &step);
  // An explicit checkpoint path is the user's own choice; nothing to resume means nothing to ask.
  if (checkpoint.isEmpty() || (!resume.isEmpty() && resume != QStringLiteral("latest"))) return plan;

  const auto max_it = resolved.find("max_train_steps");
  const qint64 max_steps = max_it != resolved.end() && max_it->is_number_integer() ? max_it->get<qint64>() : 0;
  StartDialog dialog(parent, run_dir, checkpoint, step, max_steps,
                     suggest_run_name(QFileInfo(run_dir).path(), QFileInfo(run_dir).fileName()), resume.isEmpty());
  dialog.exec();
  switch (dialog.choice()) {
    case StartDialog::Choice::Cancel:
      plan.go = false;
      break;
    case StartDialog::Choice::Continue:
      plan.resolved["resume_from_checkpoint"] = checkpoint.toStdString();
      plan.continue_curves = true;
      plan.history_file = QDir(run_dir).filePath(QStringLiteral("metrics.jsonl"));
      plan.history_step = step;
      break;
    case StartDialog::Choice::Fresh:
      plan.new_run_name = dialog.new_run_name();
      plan.resolved["studio"]["run_name"] = plan.new_run_name.toStdString();
      plan.resolved["resume_from_checkpoint"] = "";  // the worker's "start from scratch"
      break;
  }
  return plan;
}

}  // namespace repa::ui
