// repa-studio: the desktop window. Thin: application setup, then the main window.
#include <QApplication>

#include "core/base/version.h"
#include "ui/main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("repa-studio"));
  QApplication::setApplicationName(QStringLiteral("REPA Studio"));
  QApplication::setApplicationVersion(QString::fromLatin1(repa::kVersion));
  repa::ui::MainWindow window;
  window.show();
  return QApplication::exec();
}
