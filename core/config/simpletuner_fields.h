// Every option SimpleTuner registers, so that a SimpleTuner config loads whole: the studio declares the
// options it uses in the registry and keeps the others unchanged for export. The table is generated from
// tests/fixtures/simpletuner/options.json by scripts/gen_config_tables.py (simpletuner_fields.cpp).
#pragma once
#include <string>
#include <vector>

namespace repa::config {

struct SimpleTunerField {
  const char* name;        // the field's name in SimpleTuner's registry
  const char* arg_name;    // its command-line flag ("--fuse_qkv_projections"); empty or bare: not a flag
  const char* aliases;     // older flags, space-separated ("--validation_steps")
  const char* field_type;  // checkbox, number, select, text, textarea, text_json
  char value_kind;         // what SimpleTuner's parser makes of a value: b(ool) i(nt) f(loat) s(tring) j(son)
  const char* default_json;
};

const std::vector<SimpleTunerField>& simpletuner_fields();

// The label SimpleTuner's WebUI shows for one choice of a select field ("linear" → "Linear Decay").
struct SimpleTunerChoiceLabel {
  const char* field;
  const char* value;  // the choice as text (3 for irepa_projector_kernel_size's number 3)
  const char* label;
};
const std::vector<SimpleTunerChoiceLabel>& simpletuner_choice_labels();

// The model families a field applies to (its "model_specific" list): SimpleTuner shows it only for them.
struct SimpleTunerFamilies {
  const char* field;
  const char* families;  // space-separated model_family names
};
const std::vector<SimpleTunerFamilies>& simpletuner_model_specific();

// By name, flag or alias, with or without the leading "--"; nullptr when SimpleTuner does not know it.
const SimpleTunerField* find_simpletuner_field(const std::string& key);

// True when SimpleTuner's command line accepts the field (a flag starting with "--").
bool accepted_by_simpletuner_cli(const SimpleTunerField& field);

}  // namespace repa::config
