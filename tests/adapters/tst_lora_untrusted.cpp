// LoRA inputs from outside: a LoRA file's JSON header and the peft_lora_target_modules text are parsed with
// bounded nesting, and what a message quotes of them is a short excerpt.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/adapters/lora_file.h"
#include "core/adapters/lora_targets.h"
#include "core/io/safetensors.h"
#include "tests/test_support.h"

using namespace repa::adapters;
using repa::test::contains;
using repa::test::error_of;

namespace {
std::string nested(int levels) {
  return std::string(static_cast<std::size_t>(levels), '[') + std::string(static_cast<std::size_t>(levels), ']');
}
}  // namespace

TEST_CASE("peft_lora_target_modules nested 65,000 levels deep, or a huge pattern, is refused by key") {
  auto message = error_of([] { resolve_targets(family_lora("sdxl"), {{"peft_lora_target_modules", nested(65000)}}); });
  CHECK(contains(message, "peft_lora_target_modules"));
  CHECK(message.size() < 600);
  message = error_of([] {
    resolve_targets(family_lora("sdxl"),
                    {{"peft_lora_target_modules", std::string(5000, '(') + std::string(5000, ')')}});
  });
  CHECK(contains(message, "10000 characters long"));
  CHECK(message.size() < 600);
  // A list entry that is not a name is quoted short.
  message = error_of([] {
    resolve_targets(family_lora("sdxl"),
                    {{"peft_lora_target_modules", "[\"to_q\", {\"a\": \"" + std::string(100000, 'x') + "\"}]"}});
  });
  CHECK(contains(message, "every entry must be a module name"));
  CHECK(message.size() < 600);
}

TEST_CASE("a LoRA file whose JSON header is nested 65,000 levels deep is refused naming the file and the depth") {
  repa::test::ScratchDir dir;
  const auto path = dir.file("deep.safetensors");
  repa::io::save_safetensors(path, {{"unet.blocks.0.to_q.lora_A.weight", torch::zeros({2, 6})}},
                             {{"lora_adapter_metadata", nested(65000)}});
  const auto message = error_of([&] { read_lora_file(path, family_lora("sdxl"), std::vector<std::string>{}); });
  CHECK(contains(message, "deep.safetensors"));
  CHECK(contains(message, "nested deeper than 64"));
}
