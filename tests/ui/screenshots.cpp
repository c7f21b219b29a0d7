// The screenshots of docs/gui.md and the README: the window during a short demo run (the real worker),
// at 1600x1000 and at 1280x800, plus the settings help and search at 1280x800. Not a test: run by
// scripts/screenshots.sh, which gives the offscreen platform a 1280x800 screen and shrinks the PNGs.
// Usage: ui_screenshots OUTPUT_DIR
#include <QAction>
#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QListWidget>
#include <QTemporaryDir>
#include <QTest>
#include <cstdio>
#include <functional>

#include "ui/chart_board.h"
#include "ui/main_window.h"
#include "ui/option_form.h"
#include "ui/run_controller.h"
#include "ui/settings_panel.h"

namespace {

bool wait_for(const std::function<bool()>& done, int timeout_ms) {
  QElapsedTimer timer;
  timer.start();
  while (!done()) {
    if (timer.elapsed() > timeout_ms) return false;
    QTest::qWait(100);
  }
  return true;
}

bool shoot(repa::ui::MainWindow& window, int width, int height, const QString& path) {
  window.resize(width, height);
  // Let the chart grid reflow and every chart replot at its new size before the grab.
  for (int i = 0; i < 5; ++i) {
    QTest::qWait(100);
    window.charts()->reset_views();
  }
  const bool ok = window.grab().save(path);
  std::printf("%s %s\n", ok ? "wrote" : "FAILED", qPrintable(path));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: ui_screenshots OUTPUT_DIR\n");
    return 2;
  }
  const QString out = QString::fromLocal8Bit(argv[1]);
  QDir().mkpath(out);
  QTemporaryDir runs;
  repa::ui::MainWindow window;
  window.controller()->set_program(QStringLiteral(REPA_TRAIN_EXE));
  window.show();
  if (!QTest::qWaitForWindowExposed(&window)) return 1;
  window.settings()->load_preset(QStringLiteral("demo"));
  repa::ui::OptionForm* form = window.settings()->form();
  form->set_value("output_dir", runs.path().toStdString());
  form->set_value("max_train_steps", 400);
  form->set_value("studio.threads", 2);
  form->set_value("crepa_scheduler", "cosine");  // a curve in the schedule preview and the weight chart
  form->set_value("crepa_warmup_steps", 40);
  if (!window.start_run()) {
    std::fprintf(stderr, "Start refused: %s\n", qPrintable(window.settings()->problem_summary()));
    return 1;
  }
  auto points = [&window] { return window.charts()->chart(QStringLiteral("totalLoss"))->point_count(0); };
  if (!wait_for([&] { return points() >= 150; }, 900000)) {
    std::fprintf(stderr, "the demo reported %d steps in 15 minutes\n", points());
    return 1;
  }
  bool ok = shoot(window, 1600, 1000, out + QStringLiteral("/main_window.png"));
  ok = shoot(window, 1280, 800, out + QStringLiteral("/main_window_1280x800.png")) && ok;
  // The settings: a search by a word of the help, and the help of the field it opened.
  form->search_box()->setText(QStringLiteral("block tap"));
  QTest::qWait(100);
  if (form->search_results()->count() > 0) emit form->search_results()->itemActivated(form->search_results()->item(0));
  ok = shoot(window, 1280, 800, out + QStringLiteral("/settings_help_1280x800.png")) && ok;
  window.findChild<QAction*>(QStringLiteral("actionStop"))->trigger();
  wait_for([&window] { return !window.controller()->is_active(); }, 60000);
  return ok ? 0 : 1;
}
