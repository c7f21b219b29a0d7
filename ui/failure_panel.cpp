#include "ui/failure_panel.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QVBoxLayout>

namespace repa::ui {

FailurePanel::FailurePanel(QWidget* parent) : QFrame(parent) {
  setObjectName(QStringLiteral("failurePanel"));
  setFrameShape(QFrame::StyledPanel);
  setStyleSheet(QStringLiteral("#failurePanel { background: #fdecea; border: 1px solid #d9534f; }"));
  reason_ = new QLabel(this);
  reason_->setObjectName(QStringLiteral("failureReason"));
  reason_->setWordWrap(true);
  reason_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  details_ = new QPlainTextEdit(this);
  details_->setObjectName(QStringLiteral("failureLog"));
  details_->setReadOnly(true);
  details_->setMaximumHeight(110);
  details_->setFont(QFont(QStringLiteral("monospace"), 8));
  resume_ = new QPushButton(tr("Resume from last checkpoint"), this);
  resume_->setObjectName(QStringLiteral("failureResume"));
  auto* dismiss = new QPushButton(tr("Dismiss"), this);

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(reason_, 1);
  buttons->addWidget(resume_);
  buttons->addWidget(dismiss);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(8, 6, 8, 6);
  layout->addLayout(buttons);
  layout->addWidget(details_);

  connect(resume_, &QPushButton::clicked, this, &FailurePanel::resume_requested);
  connect(dismiss, &QPushButton::clicked, this, &QWidget::hide);
  hide();
}

void FailurePanel::show_failure(const QString& reason, const QStringList& last_lines, bool can_resume) {
  reason_->setText(QStringLiteral("<b>%1</b> %2").arg(tr("The run stopped:"), reason.toHtmlEscaped()));
  details_->setPlainText(last_lines.join(QLatin1Char('\n')));
  details_->moveCursor(QTextCursor::End);
  // Resuming a run the worker refused (a bad config) fails the same way: no button that invites it.
  resume_->setVisible(can_resume);
  resume_->setEnabled(can_resume);
  if (!can_resume)
    reason_->setText(reason_->text() + QStringLiteral("<br>") +
                     tr("Fix the settings it names and press Start; resuming would fail the same way."));
  show();
}

QString FailurePanel::reason() const { return reason_->text(); }
QString FailurePanel::details() const { return details_->toPlainText(); }

}  // namespace repa::ui
