#include "core/train/trainer.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/base/error.h"
#include "core/base/stop_request.h"
#include "core/config/alignment_grid.h"
#include "core/config/trainer_support.h"
#include "core/data/image.h"
#include "core/data/image_tensor.h"
#include "core/diffusion/samplers.h"
#include "core/encoders/hub_repo.h"
#include "core/train/backbone_flow_families.h"
#include "core/train/checkpoint.h"
#include "core/train/config_values.h"
#include "core/train/demo_t2i_pipeline.h"
#include "core/train/family_conditioning.h"
#include "core/train/fine_tuned_pipeline.h"
#include "core/train/fused_adamw.h"
#include "core/nn/embeddings.h"
#include "core/train/progress_bar.h"
#include "core/train/sample_grid.h"

namespace repa::train {

namespace fs = std::filesystem;

namespace {

int64_t resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

torch::Device device_from(const nlohmann::json& config) {
  const std::string device = text_or(studio_settings(config), "device", "auto");
  if (device == "cpu") return torch::kCPU;
  if (device == "cuda" || device == "auto") {
    if (torch::cuda::is_available()) return torch::kCUDA;
    if (device == "cuda") throw InputError("studio.device is \"cuda\" but this libtorch sees no CUDA device");
    return torch::kCPU;
  }
  throw InputError("studio.device '" + device + "' is unknown (auto, cpu, cuda)");
}

// The teacher settings SimpleTuner keeps per regularizer: U-REPA's urepa_model / urepa_encoder_image_size
// stand where TeacherOptions reads REPA's.
nlohmann::json teacher_config(const nlohmann::json& config) {
  nlohmann::json out = config;
  if (flag_or(config, "urepa_enabled", false)) {
    out["crepa_model"] = text_or(config, "urepa_model", "dinov2_vitg14");
    out["crepa_encoder_image_size"] = integer_or(config, "urepa_encoder_image_size", 518);
  }
  return out;
}

}  // namespace

Trainer::Trainer(nlohmann::json resolved_config, TrainerOptions options)
    : config_(std::move(resolved_config)), options_(options) {
  const std::string family = unsupported_family_message(config_);
  if (!family.empty()) throw InputError(family);
  // A family run takes its encoders, VAE, objective and denoiser from its pipeline folder; the run's config
  // records what they resolved to.
  pipeline_ = prepare_family_run(config_);  // "@demo-t2i" makes the demo's tiny pipeline on first use
  try {
    setup();
  } catch (const StopRequested& e) {
    // A signal during set-up: nothing was trained, so nothing is saved; the folder says it stopped.
    if (run_dir_) {
      report("info", e.what());
      set_finished("stopped");
    }
    throw;
  } catch (const std::exception& e) {
    // A run folder that exists already says why the run never started.
    if (parallel_ && !dynamic_cast<const DistributedError*>(&e)) parallel_->report_failure(e.what());
    if (run_dir_) {
      events_.emit("error", {{"message", e.what()}, {"step", step_}, {"last_checkpoint", last_checkpoint_}});
      set_state("failed");
    }
    throw;
  }
}

Trainer::~Trainer() = default;

void Trainer::report(const std::string& level, const std::string& message) { events_.log(level, message); }

void Trainer::set_state(const std::string& state) {
  state_ = state;
  events_.emit("state", {{"state", state}, {"step", step_}});
  run_dir_->update_status({{"state", state}, {"step", step_}, {"max_train_steps", max_steps_}});
}

void Trainer::set_finished(const std::string& reason, const nlohmann::json& outputs) {
  state_ = "finished";
  nlohmann::json fields = {{"state", "finished"}, {"step", step_}, {"reason", reason}};
  fields.update(outputs);
  events_.emit("state", fields);
  run_dir_->update_status(fields);
}

void Trainer::heartbeat(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_heartbeat_ < std::chrono::seconds(5)) return;
  last_heartbeat_ = now;
  events_.emit("heartbeat", {{"step", step_}, {"state", state_}});
  run_dir_->update_status({{"state", state_}, {"step", step_}});
}

void Trainer::setup() {
  const auto& studio = studio_settings(config_);
  const auto teacher_input = TeacherInputOptions::from_config(config_);  // a bad choice stops before the run folder
  device_ = device_from(config_);
  max_steps_ = integer_or(config_, "max_train_steps", 0);
  if (max_steps_ <= 0) throw InputError("max_train_steps must be a positive number of steps, got " +
                                        std::to_string(max_steps_));
  batch_size_ = integer_or(config_, "train_batch_size", 16);
  accumulation_ = std::max<int64_t>(1, integer_or(config_, "gradient_accumulation_steps", 1));
  max_grad_norm_ = number_or(config_, "max_grad_norm", 0.0);
  checkpoint_interval_ = integer_or(config_, "checkpoint_step_interval", 0);
  keep_checkpoints_ = integer_or(config_, "checkpoints_total_limit", 0);
  sample_interval_ = integer_or(config_, "validation_step_interval", 0);
  random_flip_ = flag_or(studio, "random_flip", false);
  const uint64_t seed = static_cast<uint64_t>(integer_or(config_, "seed", 0));
  torch::manual_seed(seed);
  // Data parallelism (RANK/WORLD_SIZE from --nproc-per-node, torchrun or SLURM): meet the other ranks first.
  if (const auto env = DistributedEnv::from_environment(); env.enabled()) {
    DistributedOptions distributed;
    distributed.timeout = std::chrono::seconds(std::max<int64_t>(5, integer_or(studio, "distributed_timeout", 300)));
    distributed.cuda = device_.is_cuda();
    parallel_ = std::make_unique<DataParallel>(env, distributed);
  }

  // The run folder: a resumed checkpoint's own run unless the config names one.
  std::string run_path = run_directory_for(config_);
  const std::string resume_value = text_or(config_, "resume_from_checkpoint", "");
  if (text_or(studio, "run_name", "").empty() && !resume_value.empty() && resume_value != "latest") {
    if (auto checkpoint = resolve_resume(resume_value, resume_value))
      run_path = fs::path(*checkpoint).parent_path().parent_path().string();
  }
  // Rank 0 names and owns the run folder; the other ranks keep their own log and status under its ranks/.
  main_run_path_ = parallel_ ? parallel_->share_from_main("run_dir", run_path) : run_path;
  if (!is_main_rank()) run_path = main_run_path_ + "/ranks/rank-" + std::to_string(parallel_->rank());
  run_dir_ = std::make_unique<RunDirectory>(run_path);
  events_.open_run_directory(run_dir_->path());
  events_.set_stdout(options_.events_to_stdout && is_main_rank());
  events_.add_listener([this](const nlohmann::json& e) {
    const std::string type = e.value("type", "");
    if (type == "log") run_dir_->append_log(e.value("level", "info") + ": " + e.value("message", ""));
    if (type == "error") run_dir_->append_log("error: " + e.value("message", ""));
  });
  if (options_.progress_bar && is_main_rank()) {
    auto bar = std::make_shared<ProgressBar>(max_steps_);
    events_.add_listener([bar](const nlohmann::json& e) { bar->on_event(e); });
  }
  run_dir_->write_config(config_);
  for (const auto& note : run_dir_->take_notes()) report("warning", note);
  set_state("starting");
  if (options_.command_fd >= 0 && is_main_rank())
    control_.listen(options_.command_fd, [this](const std::string& error) { report("warning", error); });
  if (options_.handle_signals) control_.install_signal_handlers();

  // A regularizer that does not fit the backbone stops the run before a teacher is loaded or a cache filled.
  Alignment::check_fits(config_, text_or(studio, "architecture", "sit"));
  latent_space_ = std::make_unique<LatentSpace>(config_, device_);
  const bool aligning = flag_or(config_, "crepa_enabled", false) || flag_or(config_, "urepa_enabled", false);
  if (aligning) {
    auto teacher_options = encoders::TeacherOptions::from_config(teacher_config(config_));
    teacher_options.device = device_;
    teacher_options.on_notice = [this](const std::string& m) { report("warning", m); };
    teacher_ = encoders::make_teacher(teacher_options);
    teacher_description_ = teacher_->describe();
    if (teacher_options.random_init) {
      teacher_description_ += " [randomly initialised DINOv2-shaped teacher: a smoke test of the alignment, not "
                              "real features]";
      report("warning", "the teacher is a randomly initialised DINOv2-shaped encoder (studio.encoder_random_init); "
                        "its alignment curves only show the machinery working. Real runs use fetched DINOv2 "
                        "weights (repa-train fetch).");
    }
  }
  throw_if_stop_requested("loading the teacher");
  // Caches are filled once, split across the ranks: each fills its share, and all wait for the others.
  CacheShard shard;
  if (parallel_) shard = {parallel_->rank(), parallel_->world_size()};
  const auto prepare_data = [&] {
    data_ = prepare_training_data(teacher_ ? teacher_config(config_) : config_, *latent_space_, teacher_.get(),
                                  [this](const std::string& level, const std::string& m) { report(level, m); }, shard);
  };
  if (parallel_)
    parallel_->each_share("filling the latent and teacher caches", prepare_data);
  else
    prepare_data();
  // SimpleTuner's decode-only mode: every latent and teacher token is cached now, only sampling decodes.
  if (teacher_ && teacher_input.input == TeacherInput::VaeDecode && teacher_input.drop_vae_encoder) {
    latent_space_->drop_encoder();
    report("info", "crepa_drop_vae_encoder: the VAE's encoder and quant_conv are freed; the decoder stays for "
                   "samples");
  }

  throw_if_stop_requested("preparing the dataset");
  // Text-conditioned runs: captions → text-embedding cache; the text encoders are freed before training.
  const int64_t resolution = integer_or(config_, "resolution", 256);
  if (text_or(studio, "architecture", "sit") == "unet2d_condition" || pipeline_) {
    auto options = CaptionConditioningOptions::from_config(config_, data_.backend ? &*data_.backend : nullptr);
    if (pipeline_) {
      // The prompts come from the captions, so they are known only once the captions are read.
      const auto captions = data::read_captions(data_.folder, options.captions);
      sample_prompts_ = validation_prompts(config_, captions);
      options.extra_prompts = sample_prompts_;
      options.extra_prompts.push_back(validation_negative_prompt(config_));
    }
    options.shard_rank = shard.rank;
    options.shard_world = shard.world_size;
    const auto prepare_captions = [&] {
      captions_ = std::make_unique<CaptionConditioning>(
          std::move(options), data_, [this](const std::string& level, const std::string& m) { report(level, m); });
    };
    if (parallel_)
      parallel_->each_share("filling the text-embedding cache", prepare_captions);
    else
      prepare_captions();
  }
  if (pipeline_ && pipeline_->family == "sdxl")
    time_ids_ = data_.buckets ? sdxl_time_ids(*data_.buckets) : sdxl_time_ids(data_.folder, resolution);
  BackboneShape shape;
  shape.input_size = resolution / latent_space_->downsampling();
  shape.in_channels = latent_space_->channels();
  shape.num_classes = data_.num_classes;
  shape.text_width = captions_ ? captions_->width() : 0;
  backbone_ = make_backbone(config_, shape);
  backbone_->module().to(device_);
  backbone_->module().train();
  if (captions_) backbone_->set_unconditional_text(captions_->unconditional().at("hidden").to(device_));
  if (pipeline_) {
    prompt_table_ = prompt_table(*captions_, sample_prompts_, validation_negative_prompt(config_), resolution,
                                 time_ids_.defined());
    backbone_->set_prompt_table(prompt_table_);
  }
  // A Hub repo id names the folder `repa-train fetch` filled; an unfetched one says the command.
  const std::string pretrained = encoders::resolve_model_source(
      text_or(config_, "pretrained_model_name_or_path", ""), "pretrained_model_name_or_path",
      text_or(config_, "model_family", ""));
  if (!pretrained.empty() && !pipeline_) {
    if (!fs::exists(pretrained))
      throw InputError("pretrained_model_name_or_path '" + pretrained +
                       "' is not a file or folder here (the worker starts SiT/UNet runs from a local safetensors "
                       "checkpoint, or from scratch when the key is empty)");
    backbone_->load_weights(pretrained);
    report("info", "initial weights from " + pretrained);
  }
  const std::string architecture = text_or(studio, "architecture", "sit");
  alignment_ = std::make_unique<Alignment>(config_, architecture, backbone_->tap_width(),
                                           teacher_ ? teacher_->token_dim() : 0, max_steps_, device_);
  // Under LoRA the base is frozen and only the adapters and the projector train.
  lora_ = LoraTraining::from_config(config_, backbone_->module(), architecture);
  if (lora_ && lora_->load_projector(alignment_->projectors(), std::string(alignment_->name()) + "_projector") > 0)
    report("info", "init_lora: the alignment projector starts from the file's " + std::string(alignment_->name()) +
                       "_projector");

  for (auto& p : backbone_->module().parameters())
    if (p.requires_grad()) trainable_.push_back(p);
  if (lora_)
    for (auto& p : lora_->parameters()) trainable_.push_back(p);
  for (auto& p : alignment_->parameters()) trainable_.push_back(p);
  lr_schedule_ = LrSchedule::from_config(config_);
  optimizer_ = std::make_unique<FusedAdamW>(
      trainable_, torch::optim::AdamWOptions(lr_schedule_.lr(0))
                      .betas({number_or(config_, "adam_beta1", 0.9), number_or(config_, "adam_beta2", 0.999)})
                      .eps(number_or(config_, "adam_epsilon", 1e-8))
                      .weight_decay(number_or(config_, "adam_weight_decay", 1e-2)));
  // Under LoRA the average is of the adapters (SimpleTuner's EMA follows what trains).
  if (flag_or(config_, "use_ema", false))
    ema_ = std::make_unique<ExponentialMovingAverage>(averaged_module(), number_or(config_, "ema_decay", 0.9999));
  // The family's training schedule is its scheduler's; SimpleTuner forces zero-terminal-SNR betas on SD 2.x.
  objective_ = std::make_unique<diffusion::Objective>(pipeline_ ? family_objective(config_, *pipeline_)
                                                                : diffusion::Objective::from_json(config_));
  timestep_sampler_ = diffusion::TimestepSampler::from_json(config_);
  if (pipeline_) {
    vp_noise_ = diffusion::VpNoiseSettings::from_config(config_);
    if (!objective_->is_flow())
      vp_timesteps_ = diffusion::VpTimestepSampler::from_config(config_, objective_->schedule().num_train_timesteps);
  }
  // Flow families draw their sigmas as SimpleTuner does (flow_* options, the scheduler's resolution shift).
  if (pipeline_ && objective_->is_flow())
    flow_sigmas_ = diffusion::FlowSigmaSampler::from_config(
        config_, diffusion::FlowShiftSettings::from_scheduler_config(pipeline_->scheduler));
  loss_config_ = diffusion::LossConfig::from_json(config_);

  data::BatchLoaderOptions loader;
  loader.batch_size = static_cast<int>(batch_size_);
  loader.resolution = static_cast<int>(resolution);
  loader.load_pixels = latent_space_->is_pixel_space();
  loader.random_flip = random_flip_;
  loader.seed = seed;
  loader.rank = parallel_ ? parallel_->rank() : 0;
  loader.world_size = static_cast<int>(world_size());
  loader.threads = static_cast<int>(std::max<int64_t>(0, integer_or(studio, "num_workers", 2)));
  if (data_.latents) loader.caches.push_back(data_.latents.get());
  if (data_.tokens) loader.caches.push_back(data_.tokens.get());
  if (data_.buckets) {  // batches from one aspect bucket each, the caches keyed by each image's geometry
    loader.buckets = data_.buckets->buckets();
    loader.cache_keys = data_.buckets->cache_keys;
    loader.crop = [this](int64_t i, const data::Image& image) {
      return data::bucket_crop(image, data_.buckets->geometry.at(static_cast<std::size_t>(i)));
    };
  }
  loader_ = std::make_unique<data::BatchLoader>(data_.folder, loader);

  throw_if_stop_requested("building the model");
  std::string resumed_from;
  auto checkpoint = resolve_resume(resume_value, main_run_path_ + "/checkpoints",
                                   [this](const std::string& note) { report("warning", note); });
  if (parallel_) {  // every rank resumes from the checkpoint rank 0 chose
    const auto chosen = parallel_->share_from_main("resume", checkpoint.value_or(""));
    checkpoint = chosen.empty() ? std::nullopt : std::optional<std::string>(chosen);
  }
  if (checkpoint) {
    resume(*checkpoint);
    resumed_from = *checkpoint;
  }
  if (parallel_) {
    // Identical starting state everywhere: rank 0's weights, projector, EMA and random generator.
    std::vector<torch::Tensor> state = backbone_->module().parameters();
    for (const auto& b : backbone_->module().buffers()) state.push_back(b);
    if (lora_)
      for (const auto& p : lora_->parameters()) state.push_back(p);
    if (auto* projectors = alignment_->projectors())
      for (const auto& p : projectors->parameters()) state.push_back(p);
    if (ema_)
      for (const auto& named : ema_->named_tensors()) state.push_back(named.second);
    parallel_->broadcast_from_main(state);
    parallel_->broadcast_cpu_generator();
    gradient_buckets_ = std::make_unique<GradientBuckets>(*parallel_, trainable_);
    alignment_->set_similarity_mean([this](double similarity) { return parallel_->average({similarity})[0]; });
    // SiT's class dropout draws inside the model for the local rows; it is drawn for the global batch here.
    for (const auto& module : backbone_->module().modules())
      if (auto* embedder = dynamic_cast<nn::LabelEmbedderImpl*>(module.get()); embedder && embedder->dropout_prob > 0) {
        label_dropout_ = embedder->dropout_prob;
        embedder->dropout_prob = 0.0;
      }
    report("info", "data parallel: rank " + std::to_string(parallel_->rank()) + " of " +
                       std::to_string(parallel_->world_size()) + " (" + parallel_->backend_name() + "), " +
                       std::to_string(gradient_buckets_->bucket_count()) + " gradient buckets, " +
                       std::to_string(gradient_buckets_->bytes_per_step()) + " bytes all-reduced per step");
  }

  nlohmann::json corrupt = nlohmann::json::array();
  for (const auto& bad : data_.folder.corrupt) corrupt.push_back({{"path", bad.path}, {"reason", bad.reason}});
  events_.emit("run_started",
               {{"schema", kEventSchema},
                {"run_dir", run_dir_->path()},
                {"config_hash", config_hash(config_)},
                {"step", step_},
                {"max_train_steps", max_steps_},
                {"device", device_.str()},
                {"threads", torch::get_num_threads()},
                {"model", backbone_->describe()},
                {"space", latent_space_->describe()},
                {"alignment", alignment_->enabled() ? alignment_->name() : "off"},
                {"teacher", teacher_description_},
                {"teacher_random_init", teacher_ && flag_or(studio, "encoder_random_init", false)},
                {"resumed_from", resumed_from},
                {"lora", lora_ ? lora_->run_started_fields(run_dir_->path(), trainable_parameter_count())
                               : nlohmann::json(nullptr)},
                {"ignored_options", repa::config::to_json(repa::config::ignored_by_trainer(config_))},
                {"dataset", {{"dir", data_.folder.root},
                             {"images", data_.folder.images.size()},
                             {"classes", data_.folder.class_names},
                             {"corrupt", corrupt}}}});
  for (const auto& warning : options_.config_warnings) report("warning", warning);
  for (const auto& option : repa::config::ignored_by_trainer(config_)) report("warning", repa::config::describe(option));
  report("info", "model: " + backbone_->describe() + "; " + latent_space_->describe() + "; device " + device_.str());
  if (teacher_) report("info", "teacher: " + teacher_description_);
  if (lora_) report("info", lora_->describe());
  // The same note validate gives: a headless run may never have been validated.
  for (const auto& grid : repa::config::check_alignment_grid(config_)) report("warning", grid.key + ": " + grid.message);
  if (!resumed_from.empty()) report("info", "resumed from " + resumed_from + " at step " + std::to_string(step_));
}

void Trainer::resume(const std::string& checkpoint_dir) {
  const auto state = read_checkpoint_state(checkpoint_dir, max_steps_);
  const std::string saved_hash = state.value("config_hash", "");
  if (saved_hash != config_hash(config_))
    report("warning", "the config differs from the one checkpoint " + checkpoint_dir +
                          " was written with (hash " + saved_hash + " vs " + config_hash(config_) +
                          "); resuming with the new settings");
  if (lora_) {
    if (!state.contains("lora"))
      throw InputError("checkpoint " + checkpoint_dir + " has no LoRA state (a full-model checkpoint?), but this run "
                       "has model_type lora: resume it without model_type lora, or start a new run");
    lora_->check_base_fingerprint(state.at("lora").at("base_fingerprint").get<double>(), checkpoint_dir);
    lora_->load_state(open_checkpoint_part(checkpoint_dir, "lora"));
  } else {
    load_module_state(backbone_->module(), open_checkpoint_part(checkpoint_dir, "model"));
  }
  if (ema_) ema_->load(open_checkpoint_part(checkpoint_dir, "ema"));
  if (auto* projectors = alignment_->projectors())
    load_module_state(*projectors, open_checkpoint_part(checkpoint_dir, "align"));
  alignment_->load_state(state.value("align", nlohmann::json()));
  load_adamw_state(*optimizer_, open_checkpoint_part(checkpoint_dir, "optimizer"),
                   state.value("optimizer_steps", nlohmann::json::array()));
  loader_->load_state(state.at("data_position"));
  load_rng_state(open_checkpoint_part(checkpoint_dir, "rng"));
  step_ = state.at("step").get<int64_t>();
  last_checkpoint_ = checkpoint_dir;
}

int64_t Trainer::trainable_parameter_count() const {
  int64_t n = 0;
  for (const auto& p : trainable_) n += p.numel();
  return n;
}

torch::nn::Module& Trainer::averaged_module() {
  return lora_ ? lora_->module() : backbone_->module();
}

torch::Tensor Trainer::my_rows(const torch::Tensor& global) const {
  return parallel_ ? rank_slice(global, parallel_->rank(), parallel_->world_size()) : global;
}

torch::Tensor Trainer::global_randn_like(const torch::Tensor& local) const {
  auto shape = local.sizes().vec();
  shape[0] *= world_size();
  return my_rows(torch::randn(shape, local.options()));
}

nlohmann::json Trainer::save_lora_file() {
  if (!is_main_rank()) return nlohmann::json::object();
  const std::string name = std::string(alignment_->name()) + "_projector";
  const auto path = lora_->save(run_dir_->path(), alignment_->projectors(), name, step_);
  const nlohmann::json written = {{"lora_file", path}};
  run_dir_->update_status(written);
  report("info", "LoRA adapter written to " + path);
  if (ema_) {
    // SimpleTuner writes the averaged adapters beside, in ema/.
    const auto ema_dir = run_dir_->path() + "/ema";
    fs::create_directories(ema_dir);
    ema_->swap_into(averaged_module());
    const auto ema_path = lora_->save(ema_dir, alignment_->projectors(), name, step_);
    ema_->swap_into(averaged_module());
    report("info", "EMA LoRA adapter written to " + ema_path);
  }
  return written;
}

nlohmann::json Trainer::save_fine_tuned_pipeline() {
  if (!is_main_rank()) return nlohmann::json::object();
  // SimpleTuner copies the EMA weights into the model before it saves the final pipeline.
  const auto weights = ema_ ? ema_->named_tensors() : module_state(backbone_->module());
  const auto run = fs::path(run_dir_->path());
  const auto written = write_fine_tuned_pipeline(*pipeline_, weights, (run / "pipeline").string(),
                                                 (run / (run.filename().string() + ".safetensors")).string());
  nlohmann::json status = {{"pipeline_folder", written.folder}};
  report("info", "fine-tuned pipeline written to " + written.folder + " (" +
                     fs::path(written.denoiser_folder).filename().string() + "/ with the " +
                     (ema_ ? "EMA" : "trained") + " weights; " + std::to_string(written.linked_files) +
                     " files of the other components linked, " + std::to_string(written.copied_files) + " copied)");
  if (!written.single_file.empty()) {
    status["single_file"] = written.single_file;
    report("info", "LDM single file (A1111, ComfyUI) written to " + written.single_file);
  }
  run_dir_->update_status(status);
  return status;
}

void Trainer::set_teacher_every_step(bool on) {
  if (on && !teacher_) throw InputError("no teacher: enable crepa_enabled or urepa_enabled first");
  teacher_every_step_ = on;
  if (on && !latent_space_->is_pixel_space())
    throw InputError("computing the teacher per step needs pixel-space batches (studio.vae_path empty)");
}

Trainer::MicroBatchLosses Trainer::next_micro_batch_losses() {
  data::Batch batch = loader_->next();
  if (batch_observer_) batch_observer_(batch);
  torch::Tensor x0 = latent_space_->is_pixel_space()
                         ? batch.pixels
                         : latent_space_->model_input(batch.cached.at("mean"), batch.cached.at("std"),
                                                               global_randn_like(batch.cached.at("mean")));
  x0 = x0.to(device_, torch::kFloat32);
  const auto n = x0.size(0);
  // Every random draw of the step is made for the global batch and each rank keeps its rows, so a sample's
  // noise, time and dropout do not depend on the number of processes.
  const auto global_n = n * world_size();
  torch::Tensor labels = data_.num_classes > 0 ? batch.labels
                                               : torch::full({n}, backbone_->null_label(), torch::kInt64);
  labels = labels.to(device_);
  torch::Tensor teacher;
  if (alignment_->enabled()) {
    const char* token_key = alignment_->uses_cls_token() ? "cls" : "patch";
    teacher = teacher_every_step_ ? teacher_tokens(*teacher_, batch.pixels).at(token_key)
                                  : batch.cached.at(token_key);
    teacher = teacher.to(device_, torch::kFloat32);
  }
  auto noise = global_randn_like(x0);
  torch::Tensor time;
  if (flow_sigmas_) {
    time = my_rows(
        family_training_sigmas(config_, flow_sigmas_->sample(global_n, x0.size(-2), x0.size(-1), device_)));
  } else if (vp_timesteps_) {
    // SimpleTuner's VP families: offset noise, then biased / segmented timesteps.
    noise = vp_noise_->offset_noise(noise);
    time = my_rows(vp_timesteps_->sample(global_n)).to(device_);
  } else {
    time = my_rows(objective_->sample_time(timestep_sampler_, global_n, device_));
  }
  auto noised = objective_->noise(x0, noise, time);
  // Input perturbation noises the model's input more; the target keeps the drawn noise.
  if (vp_noise_) {
    const auto input_noise = vp_noise_->input_noise(noise, step_);
    if (!input_noise.is_same(noise)) noised.x_t = objective_->noise(x0, input_noise, time).x_t;
  }
  Conditioning conditioning;
  conditioning.labels = labels;
  if (captions_) {
    const auto text = to_conditioning(captions_->batch(batch.indices, step_));
    conditioning.text = text.text.to(device_);
    if (text.pooled.defined()) conditioning.pooled = text.pooled.to(device_);
    if (text.text_mask.defined()) conditioning.text_mask = text.text_mask.to(device_);
    if (time_ids_.defined()) {
      // SimpleTuner zeroes the size conditioning of a sample whose caption was dropped.
      auto ids = time_ids_.index_select(0, torch::tensor(batch.indices, torch::kLong));
      for (std::size_t i = 0; i < batch.indices.size(); ++i)
        if (captions_->caption_at(batch.indices[i], step_).empty()) ids[static_cast<int64_t>(i)].zero_();
      conditioning.time_ids = ids.to(device_);
    }
  }
  if (label_dropout_ > 0) {
    const auto drop = my_rows(torch::rand({global_n}, torch::TensorOptions().device(device_))) < label_dropout_;
    conditioning.labels = torch::where(drop, torch::full_like(labels, backbone_->null_label()), labels);
  }
  const auto out = backbone_->forward_conditioned(noised.x_t, noised.model_time, conditioning, alignment_->enabled());
  MicroBatchLosses losses;
  losses.diffusion = diffusion::diffusion_loss(loss_config_, *objective_, out.prediction, noised).loss;
  if (alignment_->enabled()) losses.alignment = alignment_->compute(out.tapped, teacher, step_);
  return losses;
}

StepMetrics Trainer::train_step() {
  const auto start = std::chrono::steady_clock::now();
  const double lr = lr_schedule_.lr(step_);
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  optimizer_->zero_grad();
  double loss_sum = 0.0, diffusion_sum = 0.0;
  std::map<std::string, double> scalars;
  for (int64_t micro = 0; micro < accumulation_; ++micro) {
    const auto losses = next_micro_batch_losses();
    torch::Tensor total = losses.diffusion;
    if (losses.alignment.applied) total = total + losses.alignment.loss;
    for (const auto& [k, v] : losses.alignment.scalars) scalars[k] = v;
    const auto& diffusion = losses.diffusion;
    const double diffusion_value = diffusion.item<double>();
    const double total_value = total.item<double>();
    if (!std::isfinite(total_value))
      throw Error("the loss became " + std::string(std::isnan(total_value) ? "NaN" : "infinite") + " at step " +
                  std::to_string(step_ + 1) + " (diffusion loss " + std::to_string(diffusion_value) +
                  "); the run stops here and the last checkpoint is kept as it was. Lower learning_rate or set "
                  "max_grad_norm.");
    if (gradient_buckets_) gradient_buckets_->prepare_backward(micro + 1 == accumulation_);
    (total / static_cast<double>(accumulation_)).backward();
    loss_sum += total_value;
    diffusion_sum += diffusion_value;
  }
  if (parallel_) {
    gradient_buckets_->finish();
    // The metrics are the global batch's: the mean over ranks of each rank's mean (equal shards).
    std::vector<double> values{loss_sum, diffusion_sum};
    for (const auto& [k, v] : scalars) values.push_back(v);
    values = parallel_->average(values);
    loss_sum = values[0];
    diffusion_sum = values[1];
    std::size_t next = 2;
    for (auto& [k, v] : scalars) v = values[next++];
  }
  const double clip = max_grad_norm_ > 0 ? max_grad_norm_ : std::numeric_limits<double>::infinity();
  const double grad_norm = torch::nn::utils::clip_grad_norm_(trainable_, clip);
  if (!std::isfinite(grad_norm))
    throw Error("the gradient norm became non-finite at step " + std::to_string(step_ + 1) +
                "; the run stops here and the last checkpoint is kept as it was. Lower learning_rate.");
  optimizer_->step();
  if (ema_) ema_->update(averaged_module());
  ++step_;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  StepMetrics m = {{"step", step_},
                   {"wall_time", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
                   {"loss", loss_sum / static_cast<double>(accumulation_)},
                   {"diffusion_loss", diffusion_sum / static_cast<double>(accumulation_)},
                   {"lr", lr},
                   {"grad_norm", grad_norm},
                   {"images_per_sec", static_cast<double>(batch_size_ * accumulation_ * world_size()) / seconds},
                   {"steps_per_sec", 1.0 / seconds},
                   {"step_time_ms", seconds * 1000.0},
                   {"memory_bytes", resident_memory_bytes()},
                   {"epoch", loader_->state().value("epoch", 0)}};
  for (const auto& [k, v] : scalars) m[k] = v;
  return m;
}

void Trainer::save_checkpoint() {
  if (!is_main_rank()) {  // rank 0 writes; every rank holds the same state
    last_checkpoint_ = main_run_path_ + "/checkpoints/checkpoint-" + std::to_string(step_);
    return;
  }
  CheckpointParts parts;
  // Under LoRA a checkpoint holds what trains (adapters, projector, optimizer state), never the frozen base.
  if (lora_) {
    parts.tensors["lora"] = lora_->state();
  } else {
    parts.tensors["model"] = module_state(backbone_->module());
  }
  if (ema_) parts.tensors["ema"] = ema_->named_tensors();
  // Family runs: the samples' prompt states, so `repa-train sample` draws them without the text encoders.
  if (pipeline_) parts.tensors["prompts"] = prompt_table_tensors(prompt_table_);
  if (auto* projectors = alignment_->projectors()) parts.tensors["align"] = module_state(*projectors);
  nlohmann::json optimizer_steps;
  parts.tensors["optimizer"] = adamw_state(*optimizer_, optimizer_steps);
  parts.tensors["rng"] = rng_state();
  parts.state = {{"format", "repa-studio checkpoint"},
                 {"version", 1},
                 {"step", step_},
                 {"max_train_steps", max_steps_},
                 {"config_hash", config_hash(config_)},
                 {"config", config_},
                 {"align", alignment_->state()},
                 {"optimizer_steps", optimizer_steps},
                 {"lr", lr_schedule_.lr(step_)},
                 {"lr_scheduler", lr_schedule_.kind},
                 {"data_position", loader_->state()},
                 {"num_classes", data_.num_classes},
                 {"class_names", data_.folder.class_names}};
  if (pipeline_) parts.state["sample_prompts"] = sample_prompts_;
  if (lora_) parts.state["lora"] = {{"base_fingerprint", lora_->base_fingerprint()}, {"adapter", lora_->describe()}};
  last_checkpoint_ = write_checkpoint(run_dir_->checkpoints(), step_, parts, keep_checkpoints_);
  events_.emit("checkpoint", {{"step", step_}, {"path", last_checkpoint_}});
  run_dir_->update_status({{"last_checkpoint", last_checkpoint_}});
}

std::string Trainer::write_samples() {
  if (!is_main_rank()) return "";  // sampling keeps the training random stream, so ranks stay in step
  auto& module = backbone_->module();
  if (ema_) ema_->swap_into(averaged_module());
  module.eval();
  SampleGrid grid;
  try {
    const int64_t rows = sample_prompts_.empty() ? data_.num_classes : static_cast<int64_t>(sample_prompts_.size());
    grid = draw_sample_grid(*backbone_, *latent_space_, *objective_, config_, rows, device_);
  } catch (...) {
    module.train();
    if (ema_) ema_->swap_into(averaged_module());
    throw;
  }
  module.train();
  if (ema_) ema_->swap_into(averaged_module());
  char name[64];
  std::snprintf(name, sizeof(name), "step-%06lld.png", static_cast<long long>(step_));
  const std::string path = run_dir_->samples() + "/" + name;
  write_sample_grid(grid, path);
  nlohmann::json shown = nlohmann::json::array();
  for (int64_t label : grid.labels)
    shown.push_back(!sample_prompts_.empty() ? nlohmann::json(sample_prompts_.at(static_cast<std::size_t>(label)))
                    : data_.num_classes > 0 ? nlohmann::json(data_.folder.class_names.at(static_cast<std::size_t>(label)))
                                          : nlohmann::json(nullptr));
  events_.emit("sample", {{"step", step_},
                          {"path", path},
                          {"ema", ema_ != nullptr},
                          {"sampler", text_or(studio_settings(config_), "sampler", "euler")},
                          {"num_steps", grid.sampler.num_steps},
                          {"guidance", grid.sampler.guidance_scale},
                          {"classes", shown},
                          {"prompts", !sample_prompts_.empty()}});  // "classes" holds prompts, not class names
  return path;
}

void Trainer::handle_commands(bool& stop) {
  auto apply = [&](Command c) {
    switch (c) {
      case Command::Stop: stop = true; break;
      case Command::Pause:
        if (state_ != "paused") set_state("paused");
        break;
      case Command::Resume:
        if (state_ == "paused") set_state("running");
        break;
      case Command::Sample: write_samples(); break;
      case Command::Checkpoint:
        // A signal right after an interval checkpoint finds the step saved already.
        if (last_checkpoint_.empty() || fs::path(last_checkpoint_).filename() != "checkpoint-" + std::to_string(step_))
          save_checkpoint();
        break;
    }
  };
  for (Command c : control_.take()) apply(c);
  while (state_ == "paused" && !stop) {
    control_.wait(1000);
    for (Command c : control_.take()) apply(c);
    heartbeat();
  }
}

int Trainer::run() {
  started_ = std::chrono::steady_clock::now();
  set_state("running");
  heartbeat(true);
  bool stop = false;
  auto last_status = std::chrono::steady_clock::now();
  try {
    while (step_ < max_steps_) {
      handle_commands(stop);
      if (parallel_) stop = parallel_->stop_together(step_, stop);
      if (stop) break;
      StepMetrics metrics = train_step();
      events_.emit("metrics", metrics);
      if (std::chrono::steady_clock::now() - last_status > std::chrono::seconds(1)) {
        run_dir_->update_status({{"step", step_}, {"loss", metrics["loss"]}});
        last_status = std::chrono::steady_clock::now();
      }
      if (checkpoint_interval_ > 0 && step_ % checkpoint_interval_ == 0) save_checkpoint();
      if (sample_interval_ > 0 && step_ % sample_interval_ == 0) write_samples();
      heartbeat();
    }
    if (stop) set_state("stopping");
    const bool have_final = !last_checkpoint_.empty() && fs::path(last_checkpoint_).filename() ==
                                                             "checkpoint-" + std::to_string(step_);
    if (!have_final) save_checkpoint();
    if (!stop && (sample_interval_ <= 0 || step_ % sample_interval_ != 0)) write_samples();
    const nlohmann::json written = lora_       ? save_lora_file()
                                   : pipeline_ ? save_fine_tuned_pipeline()
                                               : nlohmann::json::object();
    set_finished(stop ? "stopped" : "completed", written);
    report("info", std::string(stop ? "stopped" : "finished") + " at step " + std::to_string(step_));
    return 0;
  } catch (const std::exception& e) {
    if (parallel_ && !dynamic_cast<const DistributedError*>(&e)) parallel_->report_failure(e.what());
    events_.emit("error", {{"message", e.what()}, {"step", step_}, {"last_checkpoint", last_checkpoint_}});
    set_state("failed");
    if (dynamic_cast<const InputError*>(&e)) throw;
    return 1;
  }
}

}  // namespace repa::train
