// billnet-trainer: trains BILLNET through the five quantization stages,
// evaluates and verifies exported model files. See docs/trainer.md.
//
//   billnet-trainer train [--config FILE] [overrides]
//   billnet-trainer eval --model-dir REPO/NAME/VERSION --data DATA [--json]
//   billnet-trainer verify MODEL_FILE --data DATA [--json]   (exit 0 only when exact)
//   billnet-trainer config                                     (prints the defaults)
//   billnet-trainer serve [--listen ADDR]                      (the gRPC trainer service)
//   billnet-trainer job start|watch|get|list|cancel|models ... (its command-line client)
//
// DATA is a Jester-layout folder (with --split), a `file;label` CSV index of
// video files, or a synthetic set: "synth:seed=9001,clips-per-class=8".
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "billnet/cost.h"
#include "billnet/model.h"
#include "billnet/trainer/evaluate.h"
#include "billnet/trainer/training.h"
#include "trainer_client.h"  // JobClientOptions; the calls need the service
#ifdef BILLNET_TRAINER_HAS_SERVICE
#include "trainer_service.h"
#endif

namespace {

using billnet::Status;
using billnet::StatusOr;
using json = nlohmann::json;
namespace bt = billnet::trainer;
namespace fs = std::filesystem;

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

int Fail(const Status& s) {
  std::fprintf(stderr, "billnet-trainer: %s\n", s.ToString().c_str());
  return 1;
}

// "synth:seed=9001,clips-per-class=8[,streams=0]" or a folder.
StatusOr<bt::DataSource> ParseData(const std::string& spec, const std::string& split) {
  bt::DataSource d;
  if (spec.rfind("synth:", 0) == 0 || spec == "synth") {
    d.kind = "synth";
    d.synth.seed = 9001;
    d.synth.clips_per_class = 8;
    std::stringstream ss(spec.size() > 6 ? spec.substr(6) : "");
    std::string item;
    while (std::getline(ss, item, ',')) {
      const size_t eq = item.find('=');
      if (eq == std::string::npos)
        return billnet::InvalidArgument("--data '" + spec + "': '" + item + "' is not key=value");
      const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
      try {
        if (key == "seed")
          d.synth.seed = std::stoull(value);
        else if (key == "clips-per-class")
          d.synth.clips_per_class = std::stoi(value);
        else if (key == "streams")
          d.synth.streams = std::stoi(value);
        else if (key == "width")
          d.synth.source_width = std::stoi(value);
        else if (key == "height")
          d.synth.source_height = std::stoi(value);
        else if (key == "fps")
          d.synth.source_fps = std::stod(value);
        else
          return billnet::InvalidArgument("--data '" + spec + "': unknown key '" + key + "'");
      } catch (const std::exception&) {
        return billnet::InvalidArgument("--data '" + spec + "': bad value for '" + key + "'");
      }
    }
    return d;
  }
  if (fs::is_regular_file(spec) && spec.size() > 4 && spec.substr(spec.size() - 4) == ".csv") {
    d.kind = "videos";  // a `file;label` index of video files
    d.dir = spec;
    return d;
  }
  if (!fs::is_directory(spec))
    return billnet::NotFound("--data '" + spec + "': no such folder (or use synth:...)");
  d.kind = "jester";
  d.dir = spec;
  d.split = split;
  return d;
}

std::string Bar(double fraction, int width) {
  const int n = int(fraction * width + 0.5);
  return std::string(std::max(0, std::min(width, n)), '#') +
         std::string(std::max(0, width - n), '.');
}

void PrintProgress(const bt::Progress& p) {
  static const bool tty = isatty(fileno(stdout));
  if (!p.message.empty()) {
    if (tty) std::printf("\r\033[K");
    std::printf("%s\n", p.message.c_str());
    std::fflush(stdout);
    return;
  }
  char eta[32];
  const int t = int(p.eta_seconds);
  std::snprintf(eta, sizeof eta, "%dh%02dm%02ds", t / 3600, (t % 3600) / 60, t % 60);
  std::printf(
      "%sS%d epoch %d/%d [%s] step %lld/%lld loss %.4f acc %5.1f%% lr %.2g %.2f s/step "
      "ETA %s%s",
      tty ? "\r\033[K" : "", p.stage, p.epoch + 1, p.epochs,
      Bar(double(p.step) / std::max<int64_t>(p.steps, 1), 20).c_str(), (long long)p.step,
      (long long)p.steps, p.loss, 100 * p.accuracy, p.learning_rate, p.seconds_per_step, eta,
      tty ? "" : "\n");
  std::fflush(stdout);
}

int CmdTrain(const std::string& config_path, const json& overrides, bool dry) {
  bt::TrainConfig config = bt::TrainConfig::Default();
  if (!config_path.empty())
    if (Status s = bt::LoadTrainConfig(config_path, &config); !s.ok()) return Fail(s);
  if (!overrides.empty()) {
    json merged = bt::ToJson(config);
    merged.merge_patch(overrides);
    if (Status s = bt::FromJson(merged, &config); !s.ok()) return Fail(s);
  }
  if (dry) {
    std::cout << bt::ToJson(config).dump(2) << "\n";
    return 0;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  bt::TrainCallbacks cb;
  cb.on_progress = PrintProgress;
  cb.cancel = &g_cancel;
  std::printf("billnet-trainer: %s/%s, stages S%d..S%d, %d torch threads, checkpoints in %s\n",
              config.name.c_str(), config.version.c_str(), config.first_stage, config.last_stage,
              config.threads > 0 ? config.threads : torch::get_num_threads(),
              config.checkpoint_dir.c_str());
  Status s = bt::Train(config, cb);
  if (s.code() == billnet::StatusCode::kCancelled) {
    std::printf("\nstopped (%s); run the same command again to continue\n", s.message().c_str());
    return 130;
  }
  if (!s.ok()) return Fail(s);
  std::printf("done: %s/%s/%s\n", config.repo.c_str(), config.name.c_str(), config.version.c_str());
  return 0;
}

StatusOr<std::vector<bt::Clip>> LoadData(const std::string& spec, const std::string& split,
                                         const billnet::ModelInfo& info) {
  BILLNET_ASSIGN_OR_RETURN(bt::DataSource d, ParseData(spec, split));
  bt::ClipGeometry g{info.topology.height, info.topology.width, info.frame_rate};
  BILLNET_ASSIGN_OR_RETURN(std::vector<bt::Clip> clips, bt::LoadClips(d, g));
  std::vector<bt::Clip> labelled;
  for (bt::Clip& c : clips)
    if (c.label >= 0) labelled.push_back(std::move(c));
  if (labelled.empty()) return billnet::InvalidArgument("--data '" + spec + "': no labelled clips");
  return labelled;
}

int CmdEval(const std::string& dir, const std::string& data, const std::string& split, bool as_json,
            bool confusion, int threads) {
  json out = {{"model_dir", dir}, {"data", data}, {"stages", json::object()}};
  std::vector<std::shared_ptr<const billnet::Model>> models;
  for (int s = 1; s <= 5; ++s) {
    const fs::path file = fs::path(dir) / ("s" + std::to_string(s) + ".safetensors");
    if (!fs::exists(file)) continue;
    auto m = billnet::Model::LoadFile(file.string());
    if (!m.ok()) return Fail(m.status());
    models.push_back(*m);
  }
  if (models.empty())
    return Fail(billnet::NotFound("--model-dir '" + dir + "': no s1..s5.safetensors"));
  auto clips = LoadData(data, split, models.front()->info());
  if (!clips.ok()) return Fail(clips.status());
  if (!as_json)
    std::printf("%-6s %12s %10s %8s %8s   (%zu clips)\n", "stage", "weights Mb", "GBOPs", "top-1",
                "top-5", clips->size());
  for (const auto& m : models) {
    const billnet::ModelInfo& info = m->info();
    auto r = bt::EvaluateEngine(m, *clips, threads);
    if (!r.ok()) return Fail(r.status());
    auto plan = billnet::BuildPlan(info.topology);
    if (!plan.ok()) return Fail(plan.status());
    const billnet::CostReport cost = billnet::ComputeCost(*plan, info.stage);
    const std::string name = "s" + std::to_string(int(info.stage));
    json st = {{"top1", r->top1},
               {"top5", r->top5},
               {"loss", r->loss},
               {"clips", clips->size()},
               {"weight_memory_mbit", cost.weight_memory_mbit},
               {"gbops", cost.gbops},
               {"confusion", r->confusion}};
    out["stages"][name] = st;
    if (!as_json) {
      std::printf("%-6s %12.2f %10.2f %7.2f%% %7.2f%%\n", name.c_str(), cost.weight_memory_mbit,
                  cost.gbops, 100 * r->top1, 100 * r->top5);
      if (confusion) {
        std::printf("confusion (rows: true class, columns: predicted)\n");
        for (size_t i = 0; i < r->confusion.size(); ++i) {
          std::printf("%2zu %-28.28s", i, info.labels[i].c_str());
          for (int64_t v : r->confusion[i]) std::printf(v ? "%3lld" : "  .", (long long)v);
          std::printf("\n");
        }
      }
    }
  }
  if (as_json) std::cout << out.dump(2) << "\n";
  return 0;
}

int CmdVerify(const std::string& file, const std::string& data, const std::string& split,
              bool as_json, int threads) {
  auto m = billnet::Model::LoadFile(file);
  if (!m.ok()) return Fail(m.status());
  auto clips = LoadData(data, split, (*m)->info());
  if (!clips.ok()) return Fail(clips.status());
  bt::VerifyOptions opt;
  opt.threads = threads;
  auto rep = bt::VerifyModel(*m, *clips, opt);
  if (!rep.ok()) return Fail(rep.status());
  const int stage = int(rep->stage);
  if (as_json) {
    std::cout << json{{"file", file},
                      {"stage", stage},
                      {"windows", rep->windows},
                      {"identical_windows", rep->identical_windows},
                      {"near_threshold_windows", rep->near_threshold_windows},
                      {"near_threshold_mismatches", rep->near_threshold_mismatches},
                      {"violations", rep->violations},
                      {"max_relative_difference", rep->max_relative_difference},
                      {"messages", rep->messages},
                      {"exact", rep->ok()}}
                     .dump(2)
              << "\n";
  } else {
    std::printf(
        "%s (S%d): %d windows, %d identical, %d near a threshold (%d of them differ), "
        "%d violations, max relative difference %.3g -> %s\n",
        file.c_str(), stage, rep->windows, rep->identical_windows, rep->near_threshold_windows,
        rep->near_threshold_mismatches, rep->violations, rep->max_relative_difference,
        rep->ok() ? "EXACT" : "MISMATCH");
    for (const std::string& msg : rep->messages) std::printf("  %s\n", msg.c_str());
  }
  return rep->ok() ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"billnet-trainer: five-stage training, evaluation and verification of BILLNET"};
  app.require_subcommand(1);

  std::string config_path, name, version, repo, ckpt, stages, init_from;
  int threads = 0, clips_per_class = -1, streams = -1, test_clips = -1, max_steps = -1;
  int batch = 0;
  double epochs_scale = 0;
  bool dry = false;
  auto* train = app.add_subcommand("train", "train (or continue training) a model");
  train->add_option("--config", config_path, "JSON config (see `billnet-trainer config`)");
  train->add_option("--name", name, "model name");
  train->add_option("--version", version, "model version");
  train->add_option("--repo", repo, "model repository (exports go to REPO/NAME/VERSION)");
  train->add_option("--checkpoint-dir", ckpt, "checkpoints, metrics and curves");
  train->add_option("--init-from", init_from,
                    "stage file whose weights start a new version (e.g. another version's s1)");
  train->add_option("--stages", stages, "stages to train, e.g. 1-5 or 3-5");
  train->add_option("--threads", threads, "torch threads (0: all cores)");
  train->add_option("--batch-size", batch, "mini-batch size");
  train->add_option("--clips-per-class", clips_per_class, "synthetic training clips per class");
  train->add_option("--streams", streams, "synthetic training streams (runs of windows)");
  train->add_option("--test-clips-per-class", test_clips, "synthetic test clips per class");
  train->add_option("--max-steps-per-epoch", max_steps, "cap steps per epoch (smoke runs)");
  train->add_option("--epochs-scale", epochs_scale, "multiply every stage's epochs (rounded up)");
  train->add_flag("--print-config", dry, "print the effective config and exit");

  auto* config_cmd = app.add_subcommand("config", "print the default training config");

  std::string model_dir, data, split = "validation";
  bool as_json = false, confusion = false;
  int eval_threads = 0;
  auto* eval = app.add_subcommand("eval", "top-1/top-5 and confusion per stage (engine)");
  eval->add_option("--model-dir", model_dir, "REPO/NAME/VERSION")->required();
  eval->add_option("--data", data, "Jester folder or synth:seed=S,clips-per-class=N")->required();
  eval->add_option("--split", split, "Jester split (validation)");
  eval->add_flag("--json", as_json, "JSON output");
  eval->add_flag("--confusion", confusion, "print the confusion matrices");
  eval->add_option("--threads", eval_threads, "engine sessions in parallel");

  std::string model_file;
  auto* verify = app.add_subcommand("verify", "engine == trainer on a model file (DESIGN 2.6)");
  verify->add_option("model", model_file, "stage file")->required();
  verify->add_option("--data", data, "Jester folder or synth:seed=S,clips-per-class=N")->required();
  verify->add_option("--split", split, "Jester split (validation)");
  verify->add_flag("--json", as_json, "JSON output");
  verify->add_option("--threads", eval_threads, "engine sessions in parallel");

  std::string listen = "127.0.0.1:50061", workdir = ".", serve_repo = "models";
  auto* serve = app.add_subcommand("serve", "the gRPC trainer service");
  serve->add_option("--listen", listen, "address:port");
  serve->add_option("--workdir", workdir, "folder for job checkpoints and relative paths");
  serve->add_option("--repo", serve_repo, "model repository (relative to --workdir)");

  bt::JobClientOptions job_opts;
  std::string job_id, job_config, job_repo;
  bool job_watch = false;
  auto* job = app.add_subcommand("job", "talk to a trainer service (billnet-trainer serve)");
  job->require_subcommand(1);
  job->add_option("--server", job_opts.server, "trainer service address")
      ->capture_default_str();
  job->add_option("--timeout", job_opts.connect_timeout_s, "seconds to wait for the service")
      ->capture_default_str();
  job->add_flag("--json", job_opts.json, "JSON output (one object per message)");
  auto* job_start = job->add_subcommand("start", "queue a job from a config");
  job_start->add_option("--config", job_config, "JSON config file (merged over the defaults; - : stdin)")
      ->required();
  job_start->add_flag("--watch", job_watch, "follow the job to its end (exit 0 only if it succeeds)");
  auto* job_watch_cmd = job->add_subcommand("watch", "follow a job to its end");
  auto* job_get = job->add_subcommand("get", "a job's state and epochs");
  auto* job_cancel = job->add_subcommand("cancel", "stop a queued or running job");
  for (auto* c : {job_watch_cmd, job_get, job_cancel})
    c->add_option("id", job_id, "job id (job-N)")->required();
  [[maybe_unused]] auto* job_list = job->add_subcommand("list", "every job of the service");
  auto* job_models = job->add_subcommand("models", "exported model versions");
  job_models->add_option("--repo", job_repo, "repository (default: the service's)");

  CLI11_PARSE(app, argc, argv);

  if (*config_cmd) {
    std::cout << bt::ToJson(bt::TrainConfig::Default()).dump(2) << "\n";
    return 0;
  }
  if (*train) {
    json o = json::object();
    if (!name.empty()) o["name"] = name;
    if (!version.empty()) o["version"] = version;
    if (!repo.empty()) o["repo"] = repo;
    if (!ckpt.empty()) o["checkpoint_dir"] = ckpt;
    if (!init_from.empty()) o["init_from"] = init_from;
    if (threads > 0) o["threads"] = threads;
    if (batch > 0) o["batch_size"] = batch;
    if (clips_per_class >= 0) o["train"]["clips_per_class"] = clips_per_class;
    if (streams >= 0) o["train"]["streams"] = streams;
    if (test_clips >= 0) o["test"]["clips_per_class"] = test_clips;
    if (max_steps >= 0) o["max_steps_per_epoch"] = max_steps;
    if (!stages.empty()) {
      int a = 0, b = 0;
      if (std::sscanf(stages.c_str(), "%d-%d", &a, &b) == 2) {
      } else if (std::sscanf(stages.c_str(), "%d", &a) == 1) {
        b = a;
      } else {
        return Fail(billnet::InvalidArgument("--stages '" + stages + "': want N or A-B"));
      }
      o["first_stage"] = a;
      o["last_stage"] = b;
    }
    if (epochs_scale > 0) {
      bt::TrainConfig base = bt::TrainConfig::Default();
      if (!config_path.empty())
        if (Status s = bt::LoadTrainConfig(config_path, &base); !s.ok()) return Fail(s);
      json st = bt::ToJson(base)["stages"];
      for (auto& s : st) {
        s["epochs"] = int(std::ceil(s["epochs"].get<int>() * epochs_scale));
        s["decay_epochs"] = int(std::ceil(s["decay_epochs"].get<int>() * epochs_scale));
        s["run_epochs"] = int(std::ceil(s["run_epochs"].get<int>() * epochs_scale));
      }
      o["stages"] = st;
    }
    return CmdTrain(config_path, o, dry);
  }
  if (*eval) return CmdEval(model_dir, data, split, as_json, confusion, eval_threads);
  if (*verify) return CmdVerify(model_file, data, split, as_json, eval_threads);
  if (*job) {
#ifdef BILLNET_TRAINER_HAS_SERVICE
    if (*job_start) {
      std::string text;
      if (job_config == "-") {
        std::stringstream ss;
        ss << std::cin.rdbuf();
        text = ss.str();
      } else {
        std::ifstream f(job_config);
        if (!f) return Fail(billnet::NotFound("--config '" + job_config + "': cannot read it"));
        std::stringstream ss;
        ss << f.rdbuf();
        text = ss.str();
      }
      return bt::JobStart(job_opts, text, job_watch, std::cout, std::cerr);
    }
    if (*job_watch_cmd) return bt::JobWatch(job_opts, job_id, std::cout, std::cerr);
    if (*job_get) return bt::JobGet(job_opts, job_id, std::cout, std::cerr);
    if (*job_cancel) return bt::JobCancel(job_opts, job_id, std::cout, std::cerr);
    if (*job_list) return bt::JobList(job_opts, std::cout, std::cerr);
    if (*job_models) return bt::JobModels(job_opts, job_repo, std::cout, std::cerr);
    return 0;
#else
    std::fprintf(stderr,
                 "billnet-trainer job: this build has no gRPC (the service and its client are "
                 "built where gRPC and protobuf are installed)\n");
    return 3;
#endif
  }
  if (*serve) {
#ifdef BILLNET_TRAINER_HAS_SERVICE
    return bt::RunTrainerServer(listen, workdir, serve_repo);
#else
    std::fprintf(stderr,
                 "billnet-trainer serve: this build has no gRPC (the service is built where "
                 "gRPC and protobuf are installed)\n");
    return 3;
#endif
  }
  return 0;
}
