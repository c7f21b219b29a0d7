#include "ui/option_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMap>
#include <QPalette>
#include <QApplication>
#include <QScrollArea>
#include <QSpinBox>
#include <QTabWidget>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/config/trainer_support.h"

namespace repa::ui {

using repa::config::OptionSpec;
using repa::config::OptionType;
using repa::config::TrainerSupport;

namespace {

const QColor kDefaultTextColor(0x80, 0x80, 0x80);

QString text_of(const nlohmann::json& value) {
  if (value.is_null()) return {};
  if (value.is_string()) return QString::fromStdString(value.get<std::string>());
  if (value.is_number_float()) return QString::number(value.get<double>(), 'g', 10);
  return QString::fromStdString(value.dump());
}

QString pretty_section(const std::string& name) {
  QString text = QString::fromStdString(name).replace(QLatin1Char('_'), QLatin1Char(' '));
  if (!text.isEmpty()) text[0] = text[0].toUpper();
  return text;
}

bool is_nullable(const OptionSpec& spec) { return spec.default_value.is_null(); }

bool export_only(const OptionSpec& spec) {
  return spec.trainer == TrainerSupport::ExportOnly || spec.trainer == TrainerSupport::Refused;
}

QString badge_tip(const OptionSpec& spec) {
  if (spec.trainer == TrainerSupport::Conditional)
    return QStringLiteral("exported to SimpleTuner; used by the studio's trainer only when %1")
        .arg(QString::fromStdString(repa::config::describe_rules(spec.honoured_when)));
  return QString::fromUtf8(repa::config::kExportOnlyText);
}

QString tooltip_of(const OptionSpec& spec) {
  QString tip = QString::fromStdString(spec.help);
  tip += QStringLiteral("\n\nkey: %1").arg(QString::fromStdString(spec.key));
  if (!spec.default_value.is_null()) tip += QStringLiteral("   default: %1").arg(text_of(spec.default_value));
  if (spec.min || spec.max)
    tip += QStringLiteral("   range: %1 … %2")
               .arg(spec.min ? QString::number(*spec.min) : QStringLiteral("−∞"),
                    spec.max ? QString::number(*spec.max) : QStringLiteral("∞"));
  if (!spec.simpletuner) tip += QStringLiteral("\n(studio setting, not exported to SimpleTuner)");
  if (spec.trainer != TrainerSupport::Honoured) tip += QStringLiteral("\n(%1)").arg(badge_tip(spec));
  return tip;
}

// The help shown under a field: what it does and the advice, then its key, default and range.
QString help_text_of(const OptionSpec& spec) {
  QString text = QString::fromStdString(spec.help);
  QStringList facts;
  facts << QStringLiteral("key %1").arg(QString::fromStdString(spec.key));
  if (!spec.default_value.is_null())
    facts << QStringLiteral("default %1").arg(spec.type == OptionType::Choice
                                                  ? QString::fromStdString(repa::config::choice_label(spec, spec.default_value))
                                                  : text_of(spec.default_value));
  if (spec.min || spec.max)
    facts << QStringLiteral("range %1 … %2")
                 .arg(spec.min ? QString::number(*spec.min) : QStringLiteral("−∞"),
                      spec.max ? QString::number(*spec.max) : QStringLiteral("∞"));
  if (!spec.simpletuner) facts << QStringLiteral("studio setting, not exported to SimpleTuner");
  return text + QStringLiteral("\n") + facts.join(QStringLiteral(" · "));
}

// Lower-case words a search matches against: label, key, help and choice labels.
QString search_text_of(const OptionSpec& spec) {
  QString text = QString::fromStdString(spec.label + " " + spec.key + " " + spec.help);
  for (const nlohmann::json& choice : spec.choices)
    text += QLatin1Char(' ') + QString::fromStdString(repa::config::choice_label(spec, choice));
  return text.toLower();
}

// A group that starts folded, like SimpleTuner's advanced subsection.
QWidget* collapsible(const QString& title, QWidget* body, QWidget* parent, const QString& name = QString()) {
  auto* box = new QWidget(parent);
  box->setObjectName(name);
  auto* toggle = new QToolButton(box);
  toggle->setObjectName(QStringLiteral("advancedToggle"));
  toggle->setText(title);
  toggle->setCheckable(true);
  toggle->setChecked(false);
  toggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  toggle->setArrowType(Qt::RightArrow);
  toggle->setAutoRaise(true);
  body->setParent(box);
  body->setVisible(false);
  auto* layout = new QVBoxLayout(box);
  layout->setContentsMargins(0, 6, 0, 0);
  layout->addWidget(toggle);
  layout->addWidget(body);
  QObject::connect(toggle, &QToolButton::toggled, body, [toggle, body](bool open) {
    body->setVisible(open);
    toggle->setArrowType(open ? Qt::DownArrow : Qt::RightArrow);
  });
  return box;
}

}  // namespace

Panel panel_of(const OptionSpec& spec) {
  if (spec.tab == "training" && spec.section == "loss_functions") return Panel::LossFunctions;
  if (spec.key.rfind("studio.", 0) == 0) {
    if (spec.section == "dataset") return Panel::Dataset;
    if (spec.section == "architecture" || spec.section == "encoder" || spec.section == "diffusion") return Panel::Model;
    return Panel::Run;
  }
  if (spec.tab == "model") return Panel::Model;
  if (spec.tab == "basic" && (spec.section == "training_data" || spec.section == "training_essentials" ||
                              spec.section == "data_config" || spec.section == "image_processing"))
    return Panel::Dataset;
  if (spec.tab == "training" && (spec.section == "learning_rate" || spec.section == "optimizer_config"))
    return Panel::Optimizer;
  return Panel::Run;
}

QString panel_title(Panel panel) {
  switch (panel) {
    case Panel::LossFunctions: return QObject::tr("Loss functions");
    case Panel::Model: return QObject::tr("Model");
    case Panel::Dataset: return QObject::tr("Dataset");
    case Panel::Optimizer: return QObject::tr("Optimizer");
    case Panel::Run: return QObject::tr("Run");
  }
  return {};
}

OptionForm::OptionForm(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("optionForm"));
  build();
  set_config(nlohmann::json::object());
}

QWidget* OptionForm::make_editor(const OptionSpec& spec, QWidget* parent) {
  const std::string key = spec.key;
  switch (spec.type) {
    case OptionType::Bool: {
      auto* box = new QCheckBox(parent);
      connect(box, &QCheckBox::toggled, this, [this, key](bool on) { edited(key, on); });
      return box;
    }
    case OptionType::Choice: {
      auto* combo = new QComboBox(parent);
      if (is_nullable(spec)) combo->addItem(tr("(not set)"), QString());
      // SimpleTuner's labels ("Linear Decay"); the stored value stays the choice itself.
      for (const nlohmann::json& choice : spec.choices) {
        if (choice.is_null()) continue;  // SimpleTuner's "unset" choice: the "(not set)" item above
        combo->addItem(QString::fromStdString(repa::config::choice_label(spec, choice)), text_of(choice));
        combo->setItemData(combo->count() - 1, text_of(choice), Qt::ToolTipRole);
      }
      connect(combo, qOverload<int>(&QComboBox::activated), this, [this, key, combo](int index) {
        const OptionSpec* s = repa::config::find_option(key);
        const QString text = combo->itemData(index).toString();
        nlohmann::json value = text.isEmpty() ? nlohmann::json() : nlohmann::json(text.toStdString());
        // Choices are compared as text; keep numeric choices numeric (irepa_projector_kernel_size).
        for (const nlohmann::json& c : s->choices)
          if (text_of(c) == text) value = c;
        edited(key, value);
      });
      return combo;
    }
    case OptionType::Int:
      if (!is_nullable(spec)) {
        auto* spin = new QSpinBox(parent);
        // The default must show as itself even below the minimum (xm_candidate_count: 1, while its minimum
        // of 2 holds only with XM on); the validator, not the spin box, reports a value out of range.
        double lowest = spec.min ? std::max(*spec.min, -2e9) : -1e9;
        if (spec.default_value.is_number()) lowest = std::min(lowest, spec.default_value.get<double>());
        spin->setRange(static_cast<int>(lowest), spec.max ? static_cast<int>(std::min(*spec.max, 2e9)) : 1000000000);
        spin->setAccelerated(true);
        connect(spin, qOverload<int>(&QSpinBox::valueChanged), this, [this, key](int v) { edited(key, v); });
        return spin;
      }
      [[fallthrough]];
    default: {
      auto* line = new QLineEdit(parent);
      if (is_nullable(spec)) line->setPlaceholderText(tr("not set"));
      else line->setPlaceholderText(text_of(spec.default_value));
      const OptionType type = spec.type;
      connect(line, &QLineEdit::textEdited, this, [this, key, type](const QString& text) {
        const QString t = text.trimmed();
        nlohmann::json value;
        bool ok = false;
        if (t.isEmpty()) value = nullptr;
        else if (type == OptionType::Int) {
          const qlonglong v = t.toLongLong(&ok);
          value = ok ? nlohmann::json(v) : nlohmann::json(t.toStdString());  // the validator names bad text
        } else if (type == OptionType::Float) {
          const double v = t.toDouble(&ok);
          value = ok ? nlohmann::json(v) : nlohmann::json(t.toStdString());
        } else if (type == OptionType::Json) {
          const std::string s = t.toStdString();
          value = nlohmann::json::parse(s, nullptr, false);
          if (value.is_discarded()) value = s;
        } else {
          value = t.toStdString();
        }
        edited(key, value);
      });
      if (spec.type != OptionType::Path) return line;
      // A path: a line to type in, and a button to pick with the system's dialog.
      auto* box = new QWidget(parent);
      auto* layout = new QHBoxLayout(box);
      layout->setContentsMargins(0, 0, 0, 0);
      layout->addWidget(line, 1);
      auto* browse = new QToolButton(box);
      browse->setText(QStringLiteral("…"));
      layout->addWidget(browse);
      const bool folder = key.find("dir") != std::string::npos;
      connect(browse, &QToolButton::clicked, this, [this, key, line, folder] {
        const QString picked = folder ? QFileDialog::getExistingDirectory(this, tr("Choose a folder"), line->text())
                                      : QFileDialog::getOpenFileName(this, tr("Choose a file"), line->text());
        if (picked.isEmpty()) return;
        line->setText(picked);
        edited(key, picked.toStdString());
      });
      box->setFocusProxy(line);
      return box;
    }
  }
}

OptionForm::Field OptionForm::make_field(const OptionSpec& spec, QWidget* parent) {
  Field field;
  field.spec = &spec;
  field.panel = panel_of(spec);
  field.advanced = spec.subsection == "advanced";
  field.row = new QWidget(parent);
  field.row->setObjectName(QStringLiteral("row_") + QString::fromStdString(spec.key));
  field.label = new QLabel(QString::fromStdString(spec.label.empty() ? spec.key : spec.label), field.row);
  field.label->setObjectName(QStringLiteral("label_") + QString::fromStdString(spec.key));
  field.label->setToolTip(tooltip_of(spec));
  field.label->setWordWrap(true);
  field.editor = make_editor(spec, field.row);
  field.editor->setObjectName(QString::fromStdString(spec.key));
  field.editor->setToolTip(tooltip_of(spec));
  if (spec.trainer != TrainerSupport::Honoured) {
    field.export_only = export_only(spec);
    field.badge = new QLabel(field.export_only ? tr("SimpleTuner only") : tr("conditional"), field.row);
    field.badge->setObjectName(QStringLiteral("badge_") + QString::fromStdString(spec.key));
    field.badge->setToolTip(badge_tip(spec));
    field.badge->setStyleSheet(
        QStringLiteral("QLabel { color: #5d4037; background: #efebe9; border-radius: 3px; padding: 0 4px; }"));
  }
  // The help: behind a (?) button, opened under the field; the search opens it too.
  field.help_button = new QToolButton(field.row);
  field.help_button->setObjectName(QStringLiteral("helpButton_") + QString::fromStdString(spec.key));
  field.help_button->setText(QStringLiteral("?"));
  field.help_button->setCheckable(true);
  field.help_button->setAutoRaise(true);
  field.help_button->setToolTip(tr("Show what this setting does"));
  field.help = new QLabel(help_text_of(spec), field.row);
  field.help->setObjectName(QStringLiteral("helpText_") + QString::fromStdString(spec.key));
  field.help->setWordWrap(true);
  field.help->setTextFormat(Qt::PlainText);
  field.help->setStyleSheet(QStringLiteral("QLabel { color: #555; background: #f5f7fa; padding: 3px; }"));
  field.help->hide();
  QLabel* help = field.help;
  connect(field.help_button, &QToolButton::toggled, help, &QLabel::setVisible);
  field.message = new QLabel(field.row);
  field.message->setObjectName(QStringLiteral("problem_") + QString::fromStdString(spec.key));
  field.message->setWordWrap(true);
  field.message->setStyleSheet(QStringLiteral("color: #c62828;"));
  field.message->hide();

  auto* grid = new QGridLayout(field.row);
  grid->setContentsMargins(0, 1, 0, 1);
  grid->setHorizontalSpacing(8);
  grid->setVerticalSpacing(0);
  grid->addWidget(field.label, 0, 0);
  if (field.badge) grid->addWidget(field.badge, 0, 1);
  grid->addWidget(field.editor, 0, 2);
  grid->addWidget(field.help_button, 0, 3);
  grid->addWidget(field.message, 1, 0, 1, 4);
  grid->addWidget(field.help, 2, 0, 1, 4);
  // Labels get as much room as editors: in a 360 px dock a narrower column wraps them into three lines.
  grid->setColumnStretch(0, 1);
  grid->setColumnStretch(2, 1);
  return field;
}

void OptionForm::build() {
  search_box_ = new QLineEdit(this);
  search_box_->setObjectName(QStringLiteral("fieldSearch"));
  search_box_->setPlaceholderText(tr("Search settings (label, key or help)…"));
  search_box_->setClearButtonEnabled(true);
  search_results_ = new QListWidget(this);
  search_results_->setObjectName(QStringLiteral("searchResults"));
  search_results_->hide();
  tabs_ = new QTabWidget(this);
  tabs_->setObjectName(QStringLiteral("settingsTabs"));
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(search_box_);
  layout->addWidget(search_results_);
  layout->addWidget(tabs_);
  connect(search_box_, &QLineEdit::textChanged, this, &OptionForm::update_search);
  // Enter opens the first match; a click or Enter in the list opens that one.
  connect(search_box_, &QLineEdit::returnPressed, this, [this] {
    if (search_results_->count() > 0) open_search_result(search_results_->item(0));
  });
  connect(search_results_, &QListWidget::itemActivated, this, &OptionForm::open_search_result);
  connect(search_results_, &QListWidget::itemClicked, this, &OptionForm::open_search_result);

  // Within a section: main fields before the advanced subsection, each by (order, label) as SimpleTuner
  // sorts; sections keep the order in which the registry declares them.
  std::vector<const OptionSpec*> declared;
  for (const OptionSpec& spec : repa::config::registry())
    if (!spec.tab.empty() || spec.key.rfind("studio.", 0) == 0) declared.push_back(&spec);
  std::vector<const OptionSpec*> specs = declared;
  // Options the trainer does not use come after those it uses, with the same order inside.
  std::stable_sort(specs.begin(), specs.end(), [](const OptionSpec* a, const OptionSpec* b) {
    if (export_only(*a) != export_only(*b)) return !export_only(*a);
    const bool adv_a = a->subsection == "advanced", adv_b = b->subsection == "advanced";
    if (adv_a != adv_b) return !adv_a;
    if (a->order != b->order) return a->order < b->order;
    return a->label < b->label;
  });

  fields_.reserve(specs.size());
  for (Panel panel : {Panel::LossFunctions, Panel::Model, Panel::Dataset, Panel::Optimizer, Panel::Run}) {
    auto* page = new QWidget;
    page->setObjectName(QStringLiteral("panel_%1").arg(static_cast<int>(panel)));
    auto* page_layout = new QVBoxLayout(page);
    page_layout->setContentsMargins(6, 6, 6, 6);
    // Sections in the order they first appear in the registry; one group box each (the Loss functions
    // panel is a single section, shown without a box).
    std::vector<std::string> sections;
    for (const OptionSpec* spec : declared)
      if (panel_of(*spec) == panel && std::find(sections.begin(), sections.end(), spec->tab + "/" + spec->section) == sections.end())
        sections.push_back(spec->tab + "/" + spec->section);
    for (const std::string& section : sections) {
      QWidget* container = page;
      QVBoxLayout* main_layout = page_layout;
      if (panel != Panel::LossFunctions) {
        auto* group = new QGroupBox(pretty_section(section.substr(section.find('/') + 1)), page);
        main_layout = new QVBoxLayout(group);
        main_layout->setContentsMargins(6, 4, 6, 4);
        page_layout->addWidget(group);
        container = group;
      }
      // Three groups: what the trainer uses, its advanced subsection (folded), and what it does not use
      // (folded, with its own advanced subsection folded inside).
      auto* advanced_body = new QWidget;
      auto* advanced_layout = new QVBoxLayout(advanced_body);
      advanced_layout->setContentsMargins(12, 0, 0, 0);
      auto* exported_body = new QWidget;
      auto* exported_layout = new QVBoxLayout(exported_body);
      exported_layout->setContentsMargins(12, 0, 0, 0);
      auto* exported_advanced_body = new QWidget;
      auto* exported_advanced_layout = new QVBoxLayout(exported_advanced_body);
      exported_advanced_layout->setContentsMargins(12, 0, 0, 0);
      int advanced_count = 0, exported_count = 0, exported_advanced_count = 0;
      for (const OptionSpec* spec : specs) {
        if (panel_of(*spec) != panel || spec->tab + "/" + spec->section != section) continue;
        Field field = make_field(*spec, container);
        if (field.export_only && field.advanced) {
          field.row->setParent(exported_advanced_body);
          exported_advanced_layout->addWidget(field.row);
          ++exported_advanced_count;
        } else if (field.export_only) {
          field.row->setParent(exported_body);
          exported_layout->addWidget(field.row);
          ++exported_count;
        } else if (field.advanced) {
          field.row->setParent(advanced_body);
          advanced_layout->addWidget(field.row);
          ++advanced_count;
        } else {
          main_layout->addWidget(field.row);
        }
        index_.insert(QString::fromStdString(spec->key), static_cast<int>(fields_.size()));
        fields_.push_back(field);
      }
      if (advanced_count > 0)
        main_layout->addWidget(collapsible(tr("Advanced (%1)").arg(advanced_count), advanced_body, container));
      else
        delete advanced_body;
      if (exported_advanced_count > 0)
        exported_layout->addWidget(collapsible(tr("Advanced (%1)").arg(exported_advanced_count),
                                               exported_advanced_body, exported_body));
      else
        delete exported_advanced_body;
      if (exported_count + exported_advanced_count > 0) {
        QWidget* group =
            collapsible(tr("Exported to SimpleTuner only (%1)").arg(exported_count + exported_advanced_count),
                        exported_body, container, QStringLiteral("exportOnlyGroup"));
        group->setToolTip(QString::fromUtf8(repa::config::kExportOnlyText));
        main_layout->addWidget(group);
      } else {
        delete exported_body;
      }
    }
    page_layout->addStretch(1);
    auto* scroll = new QScrollArea;
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setWidget(page);
    tabs_->addTab(scroll, panel_title(panel));
  }
}

bool OptionForm::is_given(const std::string& key) const {
  if (key.rfind("studio.", 0) != 0) return config_.contains(key);
  const auto studio = config_.find("studio");
  return studio != config_.end() && studio->is_object() && studio->contains(key.substr(7));
}

void OptionForm::show_default_look(const Field& field) {
  // Grey = the registry's default, black = set by the user, as line edits show defaults as placeholders.
  auto* spin = qobject_cast<QSpinBox*>(field.editor);
  auto* combo = qobject_cast<QComboBox*>(field.editor);
  if (!spin && !combo) return;
  const bool by_default = !is_given(field.spec->key);
  QPalette palette = QApplication::palette(field.editor);
  if (by_default) {
    palette.setColor(QPalette::Text, kDefaultTextColor);
    palette.setColor(QPalette::ButtonText, kDefaultTextColor);
  }
  field.editor->setPalette(palette);
  field.editor->setProperty("showsDefault", by_default);
}

void OptionForm::load_editor(const Field& field) {
  const nlohmann::json value = repa::config::config_value(config_, field.spec->key);
  QWidget* editor = field.editor;
  show_default_look(field);
  if (auto* box = qobject_cast<QCheckBox*>(editor)) {
    box->setChecked(value.is_boolean() ? value.get<bool>() : value.is_string() && value.get<std::string>() == "true");
  } else if (auto* combo = qobject_cast<QComboBox*>(editor)) {
    const QString text = text_of(value);
    int index = combo->findData(text);
    if (index < 0) {  // a value outside the choices stays visible so the validator message makes sense
      combo->addItem(text, text);
      index = combo->count() - 1;
    }
    combo->setCurrentIndex(index);
  } else if (auto* spin = qobject_cast<QSpinBox*>(editor)) {
    spin->setValue(value.is_number() ? static_cast<int>(value.get<double>()) : 0);
  } else {
    auto* line = qobject_cast<QLineEdit*>(editor);
    if (!line) line = editor->findChild<QLineEdit*>();
    if (!line) return;
    const bool given = is_given(field.spec->key);
    // Defaults show as the placeholder, so the user sees which values they actually set.
    line->setText(given || is_nullable(*field.spec) ? text_of(value) : QString());
  }
}

void OptionForm::set_config(const nlohmann::json& config) {
  config_ = config.is_object() ? config : nlohmann::json::object();
  loading_ = true;
  for (const Field& field : fields_) load_editor(field);
  loading_ = false;
  update_visibility();
  show_problems({});
}

void OptionForm::set_value(const std::string& key, const nlohmann::json& value) {
  edited(key, value);
  const auto it = index_.constFind(QString::fromStdString(key));
  if (it != index_.constEnd()) {
    loading_ = true;
    load_editor(fields_[static_cast<size_t>(*it)]);
    loading_ = false;
  }
}

void OptionForm::edited(const std::string& key, const nlohmann::json& value) {
  if (loading_) return;
  nlohmann::json* target = &config_;
  std::string name = key;
  if (key.rfind("studio.", 0) == 0) {
    if (!config_.contains("studio") || !config_["studio"].is_object()) config_["studio"] = nlohmann::json::object();
    target = &config_["studio"];
    name = key.substr(7);
  }
  if (value.is_null()) target->erase(name);
  else (*target)[name] = value;
  const auto it = index_.constFind(QString::fromStdString(key));
  if (it != index_.constEnd()) show_default_look(fields_[static_cast<size_t>(*it)]);
  update_visibility();
  emit config_edited();
}

void OptionForm::update_visibility() {
  for (const Field& field : fields_) {
    field.row->setVisible(repa::config::is_visible(*field.spec, config_));
    field.row->setEnabled(repa::config::is_enabled(*field.spec, config_));
    // A conditional option's badge shows while its condition does not hold.
    if (field.badge && !field.export_only)
      field.badge->setVisible(!repa::config::honoured_by_trainer(*field.spec, config_));
  }
}

std::vector<repa::config::Problem> OptionForm::show_problems(const std::vector<repa::config::Problem>& problems) {
  QMap<int, QStringList> messages;
  QMap<int, bool> blocking;  // any problem at the field other than a warning
  std::vector<repa::config::Problem> rest;
  for (const auto& problem : problems) {
    const repa::config::OptionSpec* spec = repa::config::find_option(problem.key);
    const auto it = index_.constFind(QString::fromStdString(spec ? spec->key : problem.key));
    if (it == index_.constEnd()) {
      rest.push_back(problem);
      continue;
    }
    messages[*it] << QString::fromStdString(problem.message);
    blocking[*it] = blocking.value(*it) || problem.severity != repa::config::Severity::Warning;
  }
  for (int i = 0; i < static_cast<int>(fields_.size()); ++i) {
    const Field& field = fields_[static_cast<size_t>(i)];
    const bool marked = messages.contains(i);
    const bool bad = blocking.value(i);
    field.message->setText(marked ? messages[i].join(QLatin1Char('\n')) : QString());
    field.message->setVisible(marked);
    field.message->setStyleSheet(bad ? QStringLiteral("color: #c62828;") : QStringLiteral("color: #8a6d00;"));
    field.editor->setStyleSheet(bad ? QStringLiteral("border: 1px solid #c62828;") : QString());
  }
  return rest;
}

void OptionForm::focus_field(const std::string& key) {
  const auto it = index_.constFind(QString::fromStdString(key));
  if (it == index_.constEnd()) return;
  const Field& field = fields_[static_cast<size_t>(*it)];
  tabs_->setCurrentIndex(static_cast<int>(field.panel));
  // Unfold the advanced group that holds it.
  for (QWidget* w = field.row->parentWidget(); w; w = w->parentWidget())
    if (!w->isVisibleTo(tabs_) && w->parentWidget())
      if (auto* toggle = w->parentWidget()->findChild<QToolButton*>(QStringLiteral("advancedToggle"), Qt::FindDirectChildrenOnly))
        toggle->setChecked(true);
  field.editor->setFocus();
  if (auto* scroll = qobject_cast<QScrollArea*>(tabs_->currentWidget())) scroll->ensureWidgetVisible(field.row);
}

QStringList OptionForm::search(const QString& query) const {
  const QStringList words = query.toLower().split(QLatin1Char(' '), Qt::SkipEmptyParts);
  if (words.isEmpty()) return {};
  // Matches in the label first, then those found only in the key, help or choices; each in panel order.
  QStringList in_label, elsewhere;
  for (const Field& field : fields_) {
    const QString haystack = search_text_of(*field.spec);
    const QString label = field.label->text().toLower();
    bool all = true, label_has_all = true;
    for (const QString& word : words) {
      all = all && haystack.contains(word);
      label_has_all = label_has_all && label.contains(word);
    }
    if (!all) continue;
    (label_has_all ? in_label : elsewhere) << QString::fromStdString(field.spec->key);
  }
  return in_label + elsewhere;
}

void OptionForm::update_search(const QString& query) {
  search_results_->clear();
  const QStringList keys = search(query);
  for (const QString& key : keys) {
    const Field& field = fields_[static_cast<size_t>(index_.value(key))];
    QString text = QStringLiteral("%1 — %2").arg(field.label->text(), panel_title(field.panel));
    if (!repa::config::is_visible(*field.spec, config_)) text += tr("  (hidden by the current settings)");
    auto* item = new QListWidgetItem(text, search_results_);
    item->setData(Qt::UserRole, key);
    item->setToolTip(QString::fromStdString(field.spec->help));
  }
  if (!query.trimmed().isEmpty() && keys.isEmpty()) {
    auto* item = new QListWidgetItem(tr("No setting matches “%1”").arg(query.trimmed()), search_results_);
    item->setFlags(Qt::NoItemFlags);
  }
  // As tall as its matches (up to six rows), so one match does not push the fields down.
  const int rows = std::clamp(search_results_->count(), 1, 6);
  search_results_->setFixedHeight(rows * std::max(search_results_->sizeHintForRow(0), 16) +
                                  2 * search_results_->frameWidth() + 2);
  search_results_->setVisible(!query.trimmed().isEmpty());
}

void OptionForm::open_search_result(QListWidgetItem* item) {
  if (!item || item->data(Qt::UserRole).toString().isEmpty()) return;
  const std::string key = item->data(Qt::UserRole).toString().toStdString();
  focus_field(key);
  show_help(key, true);
}

void OptionForm::show_help(const std::string& key, bool open) {
  const auto it = index_.constFind(QString::fromStdString(key));
  if (it != index_.constEnd()) fields_[static_cast<size_t>(*it)].help_button->setChecked(open);
}

QLabel* OptionForm::help_label(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it == index_.constEnd() ? nullptr : fields_[static_cast<size_t>(*it)].help;
}

std::vector<std::string> OptionForm::field_keys(Panel panel) const {
  std::vector<std::string> keys;
  for (const Field& field : fields_)
    if (field.panel == panel) keys.push_back(field.spec->key);
  return keys;
}

QWidget* OptionForm::editor(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it == index_.constEnd() ? nullptr : fields_[static_cast<size_t>(*it)].editor;
}

QWidget* OptionForm::row(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it == index_.constEnd() ? nullptr : fields_[static_cast<size_t>(*it)].row;
}

QLabel* OptionForm::label(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it == index_.constEnd() ? nullptr : fields_[static_cast<size_t>(*it)].label;
}

QString OptionForm::problem_text(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it == index_.constEnd() ? QString() : fields_[static_cast<size_t>(*it)].message->text();
}

bool OptionForm::is_shown(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it != index_.constEnd() && !fields_[static_cast<size_t>(*it)].row->isHidden();
}

bool OptionForm::in_export_only_group(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it != index_.constEnd() && fields_[static_cast<size_t>(*it)].export_only;
}

QLabel* OptionForm::badge(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it == index_.constEnd() ? nullptr : fields_[static_cast<size_t>(*it)].badge;
}

bool OptionForm::in_advanced_group(const std::string& key) const {
  const auto it = index_.constFind(QString::fromStdString(key));
  return it != index_.constEnd() && fields_[static_cast<size_t>(*it)].advanced;
}

void OptionForm::insert_after(const std::string& key, QWidget* widget) {
  QWidget* after = row(key);
  if (!after) return;
  auto* layout = qobject_cast<QVBoxLayout*>(after->parentWidget()->layout());
  if (!layout) return;
  // Out first: an index taken while the widget still sits above `after` would put it one row too far
  // (below the Advanced group when the preview moves from the REPA fields to the U-REPA ones).
  if (QWidget* holder = widget->parentWidget())
    if (QLayout* old = holder->layout()) old->removeWidget(widget);
  layout->insertWidget(layout->indexOf(after) + 1, widget);
}

}  // namespace repa::ui
