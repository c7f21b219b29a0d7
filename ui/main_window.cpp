#include "ui/main_window.h"

#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>

#include "core/base/version.h"

namespace repa::ui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(QStringLiteral("REPA Studio"));
  setWindowIcon(QIcon(QStringLiteral(":/icons/repa-studio.svg")));
  build_menus();
  build_central();
  state_label_ = new QLabel(tr("idle"), this);
  statusBar()->addPermanentWidget(state_label_);
  statusBar()->showMessage(tr("REPA Studio %1 — no run").arg(QString::fromLatin1(repa::kVersion)));
  resize(1280, 800);
  restore_window_state();
}

void MainWindow::build_menus() {
  auto* file = menuBar()->addMenu(tr("&File"));
  auto* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About REPA Studio"), this, [this] {
    QMessageBox::about(this, tr("About REPA Studio"),
                       tr("<b>REPA Studio %1</b><p>Train diffusion models with representation alignment "
                          "(REPA, U-REPA).</p><p>GPL-3.0-or-later.</p>")
                           .arg(QString::fromLatin1(repa::kVersion)));
  });
}

void MainWindow::build_central() {
  loss_chart_ = new QCustomPlot(this);
  loss_chart_->setObjectName(QStringLiteral("lossChart"));
  loss_chart_->xAxis->setLabel(tr("step"));
  loss_chart_->yAxis->setLabel(tr("loss"));
  loss_chart_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  auto* title = new QCPTextElement(loss_chart_, tr("Diffusion loss"), QFont(font().family(), 11, QFont::Bold));
  loss_chart_->plotLayout()->insertRow(0);
  loss_chart_->plotLayout()->addElement(0, 0, title);

  log_view_ = new QPlainTextEdit(this);
  log_view_->setObjectName(QStringLiteral("logView"));
  log_view_->setReadOnly(true);
  log_view_->setMaximumBlockCount(5000);

  tabs_ = new QTabWidget(this);
  tabs_->addTab(loss_chart_, tr("Charts"));
  tabs_->addTab(log_view_, tr("Log"));
  setCentralWidget(tabs_);
}

void MainWindow::restore_window_state() {
  QSettings settings;
  if (settings.contains(QStringLiteral("window/geometry")))
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
  if (settings.contains(QStringLiteral("window/state")))
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
}

void MainWindow::closeEvent(QCloseEvent* event) {
  QSettings settings;
  settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
  settings.setValue(QStringLiteral("window/state"), saveState());
  event->accept();
}

}  // namespace repa::ui
