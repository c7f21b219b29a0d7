// A text-to-image run's sample grid: its event lists each cell's prompt ("classes" with "prompts": true); the
// gallery's tooltip names the prompts, the viewer's caption reads "prompt “…”" with the full prompt in its
// tooltip, and a class-labelled grid keeps "class “…”". The demo-t2i preset starts from the window with nothing
// downloaded: no "export only" mark, nothing said before Start (its pipeline folder is made when the run starts).
#include <QAction>
#include <QImage>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "ui/main_window.h"
#include "ui/native_support.h"
#include "ui/option_form.h"
#include "ui/sample_viewer.h"
#include "ui/samples_gallery.h"
#include "ui/settings_panel.h"

class SamplePromptsTest : public QObject {
  Q_OBJECT

 private slots:
  void prompts_are_shown_with_each_sample() {
    QTemporaryDir dir;
    // The worker's layout: 8 cells of 32 px with 2 px borders.
    QImage grid(8 * 34 + 2, 36, QImage::Format_RGB888);
    grid.fill(Qt::white);
    const QString path = dir.filePath(QStringLiteral("step-000010.png"));
    QVERIFY(grid.save(path));
    const std::string red = "a large red disc in the centre, on a dark background";
    const std::string blue = "a large blue triangle in the centre, on a dark background";
    nlohmann::json classes = nlohmann::json::array();
    for (int k = 0; k < 8; ++k) classes.push_back(k % 2 ? blue : red);
    repa::ui::SamplesGallery gallery;
    gallery.add_sample_event(path, {{"step", 10}, {"classes", classes}, {"prompts", true}, {"sampler", "ddim"}}, 0);
    QCOMPARE(gallery.count(), 1);
    QVERIFY(gallery.grids()[0].prompts);
    const QString tip = gallery.item(0)->toolTip();
    QVERIFY2(tip.startsWith(QString::fromStdString(red + "\n" + blue + "\n")), qPrintable(tip));
    QVERIFY(tip.endsWith(QStringLiteral("step-000010.png")));

    repa::ui::SampleViewer* viewer = gallery.open_viewer(0);
    QVERIFY(viewer);
    QVERIFY2(viewer->caption().startsWith(QStringLiteral("prompt “%1” · step 10").arg(QString::fromStdString(red))),
             qPrintable(viewer->caption()));
    auto* caption = viewer->findChild<QLabel*>(QStringLiteral("sampleCaption"));
    QVERIFY(caption);
    QCOMPARE(caption->toolTip(), QString::fromStdString(red));
    QCOMPARE(viewer->across_steps()->item(0)->toolTip(), QString::fromStdString(red));
    viewer->findChild<QPushButton*>(QStringLiteral("nextSample"))->click();
    QVERIFY(viewer->caption().startsWith(QStringLiteral("prompt “%1”").arg(QString::fromStdString(blue))));
    QCOMPARE(caption->toolTip(), QString::fromStdString(blue));

    // A class-labelled grid (no "prompts") keeps its class captions and the plain path tooltip.
    const QString other = dir.filePath(QStringLiteral("step-000020.png"));
    QVERIFY(grid.save(other));
    nlohmann::json names = nlohmann::json::array();
    for (int k = 0; k < 8; ++k) names.push_back(k % 2 ? "ring" : "disc");
    gallery.add_sample_event(other, {{"step", 20}, {"classes", names}}, 0);
    QCOMPARE(gallery.item(0)->toolTip(), QFileInfo(other).absoluteFilePath());
    viewer = gallery.open_viewer(0);
    QVERIFY2(viewer->caption().startsWith(QStringLiteral("class “disc” · step 20")), qPrintable(viewer->caption()));
    QVERIFY(caption->toolTip().isEmpty());
  }

  void the_demo_t2i_preset_can_start_from_the_window() {
    repa::ui::MainWindow window;
    QAction* action = window.findChild<QAction*>(QStringLiteral("preset_demo-t2i"));
    QVERIFY(action);
    QCOMPARE(action->text(), QStringLiteral("demo-t2i"));  // trains here, no "export only" mark
    QVERIFY(window.settings()->load_preset(QStringLiteral("demo-t2i")));
    const auto config = window.settings()->form()->config();
    QCOMPARE(QString::fromStdString(config.value("pretrained_model_name_or_path", std::string())),
             QStringLiteral("@demo-t2i"));
    QVERIFY2(window.native_support()->blocker().isEmpty(), qPrintable(window.native_support()->blocker()));
    QVERIFY2(window.start_action()->isEnabled(), qPrintable(window.settings()->problem_summary()));
    // Unlike a family preset without its folder, which says how to fetch one before Start.
    QVERIFY(window.settings()->load_preset(QStringLiteral("sd1x")));
    QVERIFY2(window.native_support()->blocker().contains(QStringLiteral("repa-train fetch")),
             qPrintable(window.native_support()->blocker()));
  }
};

QTEST_MAIN(SamplePromptsTest)
#include "tst_sample_prompts.moc"
