// Shown above the charts when a worker ended abnormally: why, its last log lines, and a way to resume.
#pragma once
#include <QFrame>

class QLabel;
class QPlainTextEdit;
class QPushButton;

namespace repa::ui {

class FailurePanel : public QFrame {
  Q_OBJECT

 public:
  explicit FailurePanel(QWidget* parent = nullptr);

  void show_failure(const QString& reason, const QStringList& last_lines, bool can_resume);
  QString reason() const;
  QString details() const;
  QPushButton* resume_button() const { return resume_; }

 signals:
  void resume_requested();

 private:
  QLabel* reason_ = nullptr;
  QPlainTextEdit* details_ = nullptr;
  QPushButton* resume_ = nullptr;
};

}  // namespace repa::ui
