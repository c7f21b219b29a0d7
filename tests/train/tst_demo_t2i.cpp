// The text-to-image demo: its generated CLIP tokenizer reads as a real one and round-trips every demo caption,
// "@demo-t2i" makes the tiny pipeline on first use and reuses it, and the demo-t2i preset trains on 1 thread.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/config/demo_t2i_source.h"
#include "core/config/export.h"
#include "core/config/family_pipeline.h"
#include "core/config/loader.h"
#include "core/data/demo_dataset.h"
#include "core/data/image.h"
#include "core/models/autoencoder_kl.h"
#include "core/text/clip_tokenizer.h"
#include "core/text/demo_clip_vocabulary.h"
#include "core/train/demo_t2i_pipeline.h"
#include "core/train/trainer.h"
#include "tests/test_support.h"

using namespace repa;
using namespace repa::train;
namespace fs = std::filesystem;
using repa::test::contains;
using repa::test::error_of;

namespace {

// GPT-2's byte-to-unicode map inverted: tokens back to the UTF-8 text, "</w>" as the space it stands for.
std::string decode(const std::vector<std::string>& tokens) {
  std::map<std::string, char> back;
  for (int b = '!'; b <= '~'; ++b) back[std::string(1, static_cast<char>(b))] = static_cast<char>(b);
  std::string text;
  for (const auto& token : tokens) {
    std::string rest = token;
    const bool end = rest.size() >= 4 && rest.compare(rest.size() - 4, 4, "</w>") == 0;
    if (end) rest.resize(rest.size() - 4);
    for (char c : rest) {
      REQUIRE(back.count(std::string(1, c)));
      text += back[std::string(1, c)];
    }
    if (end) text += ' ';
  }
  return text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

TEST_CASE("the demo CLIP tokenizer reads as CLIP's and makes each caption word one token") {
  test::ScratchDir dir;
  text::write_demo_clip_tokenizer(dir.file("tok"));
  const text::ClipTokenizer tokenizer(dir.file("tok/vocab.json"), dir.file("tok/merges.txt"));
  // 256 byte symbols, their "</w>" forms, one entry per merge, then the two special tokens last.
  const auto vocabulary = text::make_clip_vocabulary(text::demo_caption_words());
  CHECK(tokenizer.vocab_size() == 512 + vocabulary.merges.size() + 2);
  CHECK(tokenizer.bos_id() == static_cast<int64_t>(tokenizer.vocab_size()) - 2);
  CHECK(tokenizer.eos_id() == static_cast<int64_t>(tokenizer.vocab_size()) - 1);
  CHECK(tokenizer.token_id("a</w>") == 256 + 64);  // "a" is byte 0x61, the 65th printable symbol
  // Every caption of the generated dataset: one token per word, and back to the caption.
  data::generate_demo_dataset(dir.file("data"), {3, 32, 7});
  int captions = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir.file("data"))) {
    if (entry.path().extension() != ".txt") continue;
    const auto caption = read_text(entry.path());
    CAPTURE(caption);
    const auto tokens = tokenizer.tokenize(caption);
    std::istringstream words(caption);
    std::size_t count = 0;
    for (std::string w; words >> w;) count += w.back() == ',' ? 2 : 1;
    CHECK(tokens.size() == count);
    std::string spaced = caption;
    for (std::size_t at = spaced.find(','); at != std::string::npos; at = spaced.find(',', at + 2))
      spaced.insert(at, " ");  // the tokenizer splits "left," into "left" and ","
    CHECK(decode(tokens) == spaced + " ");
    const auto ids = tokenizer.encode(caption);
    CHECK(ids.front() == tokenizer.bos_id());
    CHECK(ids.back() == tokenizer.eos_id());
    ++captions;
  }
  CHECK(captions == 18);
  // A word outside the demo's falls back to smaller pieces and still round-trips.
  const auto other = tokenizer.tokenize("Magenta squares!");
  CHECK(other.size() > 3);
  CHECK(decode(other) == "magenta squares ! ");
  CHECK(contains(error_of([] { text::make_clip_vocabulary({"Red"}); }), "'Red' is not lower-case printable ASCII"));
}

TEST_CASE("@demo-t2i: the pipeline is made under output_dir on first use, then reused") {
  test::ScratchDir dir;
  nlohmann::json config = {
      {"model_family", "sd1x"}, {"pretrained_model_name_or_path", "@demo-t2i"}, {"output_dir", dir.file("runs")}};
  // Before Start the window has nothing to complain about: the folder is made when the run starts.
  CHECK(config::pipeline_folder_problem(config).empty());
  const auto folder = ensure_demo_t2i_pipeline(config);
  CHECK(folder == dir.file("runs/demo-t2i-pipeline"));
  for (const char* part : {"model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                           "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"})
    CHECK(fs::exists(fs::path(folder) / part));
  CHECK_FALSE(fs::exists(fs::path(folder) / "demo-tokenizer-source"));
  const auto pipeline = config::resolve_family_pipeline(config);
  CHECK(pipeline.folder == folder);
  CHECK(pipeline.denoiser_folder == folder + "/unet");
  // The text encoder's table and special ids are the generated tokenizer's.
  const auto tokenizer = text::ClipTokenizer::from_folder(folder + "/tokenizer");
  const auto encoder = config::read_json_file(folder + "/text_encoder/config.json");
  CHECK(encoder["vocab_size"] == tokenizer.vocab_size());
  CHECK(encoder["eos_token_id"] == tokenizer.eos_id());
  // The VAE passes pixels through: latents are the 2x2 averages of R, G, B (channel 3 zero), decoding repeats them.
  {
    torch::NoGradGuard no_grad;
    auto vae = models::load_autoencoder_kl(folder + "/vae");
    const auto pixels = torch::rand({2, 3, 32, 32}) * 2 - 1;
    const auto posterior = vae->encode(pixels);
    const auto averaged = torch::avg_pool2d(pixels, 2);
    CHECK((posterior.mean.slice(1, 0, 3) - averaged).abs().max().item<double>() < 1e-3);
    CHECK(posterior.mean.select(1, 3).abs().max().item<double>() < 1e-5);
    CHECK(posterior.std().max().item<double>() < 1e-6);
    const auto decoded = vae->decode(posterior.mean);
    const auto repeated = torch::upsample_nearest2d(averaged, {32, 32});
    CHECK((decoded - repeated).abs().max().item<double>() < 2e-3);
  }
  // Reused: a second call leaves the weights alone.
  const auto written = fs::last_write_time(folder + "/unet/diffusion_pytorch_model.safetensors");
  CHECK(ensure_demo_t2i_pipeline(config) == folder);
  CHECK(fs::last_write_time(folder + "/unet/diffusion_pytorch_model.safetensors") == written);
  // Other configs are left alone; a family it cannot make and a foreign folder in its place are named.
  CHECK(ensure_demo_t2i_pipeline({{"model_family", "sd1x"}}).empty());
  auto flux = config;
  flux["model_family"] = "flux";
  CHECK(contains(error_of([&] { ensure_demo_t2i_pipeline(flux); }), "not one for model_family 'flux'"));
  auto foreign = config;
  foreign["output_dir"] = dir.file("mine");
  fs::create_directories(dir.file("mine/demo-t2i-pipeline"));
  test::write_bytes(dir.file("mine/demo-t2i-pipeline/notes.txt"), "mine");
  CHECK(contains(error_of([&] { ensure_demo_t2i_pipeline(foreign); }), "not the generated demo-t2i pipeline"));
  CHECK(fs::exists(dir.file("mine/demo-t2i-pipeline/notes.txt")));
}

TEST_CASE("a SimpleTuner export of the demo-t2i preset names the generated pipeline instead of passing \"@demo-t2i\"") {
  test::ScratchDir dir;
  auto config = config::resolve_json(nlohmann::json::object(), "demo-t2i");
  config["output_dir"] = dir.file("runs");
  const auto exported = config::export_simpletuner(config, dir.file("export"));
  CHECK_FALSE(exported.config.contains("pretrained_model_name_or_path"));
  bool named = false;
  for (const auto& line : exported.dropped)
    named = named || contains(line, "point it at " + dir.file("runs") + "/demo-t2i-pipeline");
  CHECK(named);
}

TEST_CASE("the demo-t2i preset trains on 1 thread: the loss falls and the samples follow the prompt's colour") {
  torch::set_num_threads(1);
  test::ScratchDir dir;
  auto config = config::resolve_json(nlohmann::json::object(), "demo-t2i");
  CHECK(config["model_family"] == "sd1x");
  CHECK(config["pretrained_model_name_or_path"] == config::kDemoT2iPipelineName);
  CHECK(config["urepa_enabled"] == true);
  const int64_t steps = 600;  // the preset's length
  config["output_dir"] = dir.file("runs");
  config["max_train_steps"] = steps;
  config["checkpoint_step_interval"] = 0;
  config["validation_step_interval"] = steps;
  config["validation_num_inference_steps"] = 20;
  config["studio"]["device"] = "cpu";
  config["studio"]["num_workers"] = 0;
  config["studio"]["validation_prompts"] = {"a large red disc in the centre, on a dark background",
                                            "a large blue triangle in the centre, on a dark background"};
  Trainer trainer(config);
  REQUIRE(trainer.run() == 0);
  CHECK(fs::exists(dir.file("runs/demo-t2i-pipeline/unet/diffusion_pytorch_model.safetensors")));
  CHECK(fs::exists(dir.file("runs/demo-dataset/disc/disc_000.txt")));
  const auto run = trainer.run_directory().path();
  std::vector<double> losses;
  {
    std::ifstream in(run + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);)
      losses.push_back(nlohmann::json::parse(line)["diffusion_loss"].get<double>());
  }
  REQUIRE(losses.size() == static_cast<std::size_t>(steps));
  double first = 0, last = 0;
  for (int i = 0; i < 20; ++i) first += losses[static_cast<std::size_t>(i)] / 20;
  for (std::size_t i = losses.size() - 20; i < losses.size(); ++i) last += losses[i] / 20;
  INFO("diffusion loss, first 20 steps " << first << ", last 20 " << last);
  CHECK(last < 0.7 * first);
  // One grid of 8: the two prompts alternate, and the event names them.
  std::vector<nlohmann::json> samples;
  {
    std::ifstream in(run + "/events.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto e = nlohmann::json::parse(line);
      if (e.value("type", "") == "sample") samples.push_back(e);
    }
  }
  REQUIRE(samples.size() == 1);
  REQUIRE(samples[0]["classes"].size() == 8);
  CHECK(samples[0]["classes"][0] == "a large red disc in the centre, on a dark background");
  CHECK(samples[0]["classes"][1] == "a large blue triangle in the centre, on a dark background");
  CHECK(samples[0]["prompts"] == true);
  const auto grid = data::read_image(samples[0]["path"].get<std::string>());
  CHECK(grid.width == 8 * 34 + 2);
  // The samples follow the prompt's colour: the red-prompt cells lean to red, the blue-prompt cells far less (0-255).
  double red_cells = 0, blue_cells = 0;
  for (int k = 0; k < 8; ++k) {
    double red_minus_blue = 0;
    for (int y = 8; y < 24; ++y)  // the centre, where both prompts put their shape
      for (int x = 8; x < 24; ++x)
        red_minus_blue += (grid.at(2 + k * 34 + x, 2 + y, 0) - grid.at(2 + k * 34 + x, 2 + y, 2)) / 256.0;
    (k % 2 ? blue_cells : red_cells) += red_minus_blue / 4;
  }
  MESSAGE("mean red - blue of the red-prompt cells " << red_cells << ", of the blue-prompt cells " << blue_cells);
  CHECK(red_cells > 20);
  CHECK(red_cells - blue_cells > 40);
}
