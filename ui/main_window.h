// The studio's main window: settings panels on the left, charts in the middle, log and samples below.
#pragma once
#include <QMainWindow>

class QCustomPlot;
class QLabel;
class QPlainTextEdit;
class QTabWidget;

namespace repa::ui {

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);

  QCustomPlot* loss_chart() const { return loss_chart_; }

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void build_menus();
  void build_central();
  void restore_window_state();

  QTabWidget* tabs_ = nullptr;
  QCustomPlot* loss_chart_ = nullptr;
  QPlainTextEdit* log_view_ = nullptr;
  QLabel* state_label_ = nullptr;
};

}  // namespace repa::ui
