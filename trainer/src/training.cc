#include "billnet/trainer/training.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "billnet/session.h"
#include "billnet/synth/renderer.h"
#include "billnet/trainer/billnet_model.h"
#include "billnet/trainer/curves.h"
#include "billnet/trainer/evaluate.h"
#ifdef BILLNET_TRAINER_HAS_MEDIA
#include "billnet/trainer/jester_reader.h"
#endif

namespace billnet::trainer {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- Configuration ------------------------------------------------------------

TrainConfig TrainConfig::Default() {
  TrainConfig c;
  c.train.synth.seed = 1001;
  c.train.synth.clips_per_class = 48;
  c.train.synth.streams = 96;
  c.train.fresh_each_epoch = true;
  c.test.synth.seed = 9001;
  c.test.synth.clips_per_class = 8;
  c.calibration.synth.seed = 5001;
  c.calibration.synth.clips_per_class = 4;
  // Paper V.A learning rates; DESIGN.md 2.7 epochs for 2 CPU cores.
  const double lr[5] = {5e-4, 3e-4, 3e-4, 2e-4, 1e-6};
  for (int s = 0; s < 5; ++s) {
    c.stages[s].learning_rate = lr[s];
    c.stages[s].epochs = s == 0 ? 8 : 4;
    c.stages[s].decay_epochs = s == 0 ? 4 : 2;
    c.stages[s].run_epochs = s == 0 ? 2 : 1;
  }
  return c;
}

namespace {

json ToJson(const TopologyConfig& t) {
  return {{"base_channels", t.base_channels},
          {"groups", t.groups},
          {"lstm_units", t.lstm_units},
          {"classes", t.classes},
          {"tail_mor_blocks", t.tail_mor_blocks},
          {"frames", t.frames},
          {"height", t.height},
          {"width", t.width}};
}

json ToJson(const DataSource& d) {
  json j = {{"kind", d.kind}};
  if (d.kind == "synth") {
    j["seed"] = d.synth.seed;
    j["clips_per_class"] = d.synth.clips_per_class;
    if (!d.synth.labels.empty()) j["labels"] = d.synth.labels;
    j["streams"] = d.synth.streams;
    j["gestures_per_stream"] = d.synth.gestures_per_stream;
    j["source_width"] = d.synth.source_width;
    j["source_height"] = d.synth.source_height;
    j["source_fps"] = d.synth.source_fps;
    j["fresh_each_epoch"] = d.fresh_each_epoch;
    j["difficulty"] = d.synth.difficulty;
    j["curriculum_epochs"] = d.curriculum_epochs;
    if (!d.class_curriculum.empty()) {
      json phases = json::array();
      for (const auto& p : d.class_curriculum)
        phases.push_back({{"epochs", p.epochs}, {"labels", p.labels}});
      j["class_curriculum"] = phases;
    }
  } else {
    j["dir"] = d.dir;
    j["split"] = d.split;
    j["max_clips"] = d.max_clips;
  }
  return j;
}

// Reads `j[key]` into `out` when present; a wrong type is an error naming the key.
template <typename T>
Status Read(const json& j, const std::string& key, T* out, const std::string& where) {
  if (!j.contains(key)) return Status::Ok();
  try {
    *out = j.at(key).get<T>();
  } catch (const std::exception& e) {
    return InvalidArgument("config: '" + where + key + "': " + e.what());
  }
  return Status::Ok();
}

Status CheckKeys(const json& j, const std::vector<std::string>& keys, const std::string& where) {
  if (!j.is_object()) return InvalidArgument("config: '" + where + "' must be an object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end())
      return InvalidArgument("config: unknown key '" + where + it.key() + "'");
  return Status::Ok();
}

Status FromJson(const json& j, DataSource* d, const std::string& where) {
  BILLNET_RETURN_IF_ERROR(CheckKeys(j,
                                    {"kind", "seed", "clips_per_class", "labels", "streams",
                                     "gestures_per_stream", "source_width", "source_height",
                                     "source_fps", "fresh_each_epoch", "difficulty", "curriculum_epochs",
                                     "class_curriculum", "dir", "split", "max_clips"},
                                    where));
  BILLNET_RETURN_IF_ERROR(Read(j, "kind", &d->kind, where));
  if (d->kind != "synth" && d->kind != "jester" && d->kind != "videos")
    return InvalidArgument("config: '" + where +
                           "kind' must be \"synth\", \"jester\" or \"videos\"");
  BILLNET_RETURN_IF_ERROR(Read(j, "seed", &d->synth.seed, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "clips_per_class", &d->synth.clips_per_class, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "labels", &d->synth.labels, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "streams", &d->synth.streams, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "gestures_per_stream", &d->synth.gestures_per_stream, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "source_width", &d->synth.source_width, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "source_height", &d->synth.source_height, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "source_fps", &d->synth.source_fps, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "fresh_each_epoch", &d->fresh_each_epoch, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "difficulty", &d->synth.difficulty, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "curriculum_epochs", &d->curriculum_epochs, where));
  if (!(d->synth.difficulty >= 0 && d->synth.difficulty <= 1))
    return InvalidArgument("config: '" + where + "difficulty' must be in [0, 1]");
  if (d->curriculum_epochs < 0)
    return InvalidArgument("config: '" + where + "curriculum_epochs' must be >= 0");
  if (j.contains("class_curriculum")) {
    const json& phases = j.at("class_curriculum");
    if (!phases.is_array())
      return InvalidArgument("config: '" + where + "class_curriculum' must be an array");
    d->class_curriculum.clear();
    for (size_t i = 0; i < phases.size(); ++i) {
      const std::string w = where + "class_curriculum[" + std::to_string(i) + "].";
      BILLNET_RETURN_IF_ERROR(CheckKeys(phases[i], {"epochs", "labels"}, w));
      DataSource::ClassPhase p;
      BILLNET_RETURN_IF_ERROR(Read(phases[i], "epochs", &p.epochs, w));
      BILLNET_RETURN_IF_ERROR(Read(phases[i], "labels", &p.labels, w));
      if (p.epochs < 1) return InvalidArgument("config: '" + w + "epochs' must be >= 1");
      if (p.labels.empty()) return InvalidArgument("config: '" + w + "labels' must not be empty");
      for (int l : p.labels)
        if (l < 0 || l >= synth::kNumClasses)
          return InvalidArgument("config: '" + w + "labels' has " + std::to_string(l) +
                                 ", outside 0..26");
      d->class_curriculum.push_back(std::move(p));
    }
  }
  BILLNET_RETURN_IF_ERROR(Read(j, "dir", &d->dir, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "split", &d->split, where));
  BILLNET_RETURN_IF_ERROR(Read(j, "max_clips", &d->max_clips, where));
  if (d->synth.clips_per_class < 0 || d->synth.streams < 0 || d->max_clips < 0)
    return InvalidArgument("config: '" + where + "' counts must be >= 0");
  if (d->kind != "synth" && d->dir.empty())
    return InvalidArgument("config: '" + where + "dir' is required for a " + d->kind + " source");
  return Status::Ok();
}

}  // namespace

double EpochDifficulty(const DataSource& d, int stage, int epoch) {
  if (d.curriculum_epochs <= 0) return d.synth.difficulty;
  if (stage != 1) return 1.0;
  int class_epochs = 0;
  for (const auto& p : d.class_curriculum) class_epochs += p.epochs;
  const double ramp =
      std::min(1.0, double(std::max(0, epoch - class_epochs)) / d.curriculum_epochs);
  return d.synth.difficulty + (1.0 - d.synth.difficulty) * ramp;
}

SynthDataSpec EpochSynthSpec(const DataSource& d, int stage, int epoch) {
  SynthDataSpec spec = d.synth;
  spec.difficulty = EpochDifficulty(d, stage, epoch);
  if (stage != 1) return spec;
  int end = 0;
  for (const auto& p : d.class_curriculum) {
    end += p.epochs;
    if (epoch < end) {
      const int all = d.synth.labels.empty() ? synth::kNumClasses : int(d.synth.labels.size());
      const int total = d.synth.clips_per_class * all, n = int(p.labels.size());
      spec.labels = p.labels;
      spec.clips_per_class = (total + n - 1) / n;
      break;
    }
  }
  return spec;
}

namespace {

std::string StageName(int s) { return "s" + std::to_string(s); }

}  // namespace

json ToJson(const TrainConfig& c) {
  json stages = json::array();
  for (const StageSchedule& s : c.stages)
    stages.push_back({{"learning_rate", s.learning_rate},
                      {"epochs", s.epochs},
                      {"decay_epochs", s.decay_epochs},
                      {"run_epochs", s.run_epochs}});
  return {{"name", c.name},
          {"version", c.version},
          {"topology", ToJson(c.topology)},
          {"frame_rate", c.frame_rate},
          {"repo", c.repo},
          {"checkpoint_dir", c.checkpoint_dir},
          {"init_from", c.init_from},
          {"train", ToJson(c.train)},
          {"test", ToJson(c.test)},
          {"calibration", ToJson(c.calibration)},
          {"batch_size", c.batch_size},
          {"decay_rate", c.decay_rate},
          {"stages", stages},
          {"first_stage", c.first_stage},
          {"last_stage", c.last_stage},
          {"run_min", c.run_min},
          {"run_max", c.run_max},
          {"run_fraction", c.run_fraction},
          {"pad_fraction", c.pad_fraction},
          {"import_latent_weight", c.import_latent_weight},
          {"bsn_anneal_epochs", c.bsn_anneal_epochs},
          {"s3_threshold_pull", c.s3_threshold_pull},
          {"s3_norm_lr_scale", c.s3_norm_lr_scale},
          {"bsn_scale", c.bsn_scale},
          {"hold_frames", c.hold_frames},
          {"seed", c.seed},
          {"threads", c.threads},
          {"device", c.device},
          {"max_steps_per_epoch", c.max_steps_per_epoch},
          {"log_every", c.log_every},
          {"write_curves", c.write_curves}};
}

Status FromJson(const json& j, TrainConfig* c) {
  BILLNET_RETURN_IF_ERROR(CheckKeys(j,
                                    {"name",
                                     "version",
                                     "topology",
                                     "frame_rate",
                                     "repo",
                                     "checkpoint_dir",
                                     "init_from",
                                     "train",
                                     "test",
                                     "calibration",
                                     "batch_size",
                                     "decay_rate",
                                     "stages",
                                     "first_stage",
                                     "last_stage",
                                     "run_min",
                                     "run_max",
                                     "run_fraction",
                                     "pad_fraction",
                                     "import_latent_weight",
                                     "bsn_anneal_epochs",
                                     "s3_threshold_pull",
                                     "s3_norm_lr_scale",
                                     "bsn_scale",
                                     "hold_frames",
                                     "seed",
                                     "threads",
                                     "device",
                                     "max_steps_per_epoch",
                                     "log_every",
                                     "write_curves"},
                                    ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "name", &c->name, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "version", &c->version, ""));
  if (j.contains("topology")) {
    const json& t = j["topology"];
    BILLNET_RETURN_IF_ERROR(CheckKeys(t,
                                      {"base_channels", "groups", "lstm_units", "classes",
                                       "tail_mor_blocks", "frames", "height", "width"},
                                      "topology."));
    TopologyConfig& tc = c->topology;
    BILLNET_RETURN_IF_ERROR(Read(t, "base_channels", &tc.base_channels, "topology."));
    BILLNET_RETURN_IF_ERROR(Read(t, "groups", &tc.groups, "topology."));
    BILLNET_RETURN_IF_ERROR(Read(t, "lstm_units", &tc.lstm_units, "topology."));
    BILLNET_RETURN_IF_ERROR(Read(t, "classes", &tc.classes, "topology."));
    BILLNET_RETURN_IF_ERROR(Read(t, "tail_mor_blocks", &tc.tail_mor_blocks, "topology."));
    BILLNET_RETURN_IF_ERROR(Read(t, "frames", &tc.frames, "topology."));
    BILLNET_RETURN_IF_ERROR(Read(t, "height", &tc.height, "topology."));
    BILLNET_RETURN_IF_ERROR(Read(t, "width", &tc.width, "topology."));
  }
  BILLNET_RETURN_IF_ERROR(Read(j, "frame_rate", &c->frame_rate, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "repo", &c->repo, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "checkpoint_dir", &c->checkpoint_dir, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "init_from", &c->init_from, ""));
  if (j.contains("train")) BILLNET_RETURN_IF_ERROR(FromJson(j["train"], &c->train, "train."));
  if (j.contains("test")) BILLNET_RETURN_IF_ERROR(FromJson(j["test"], &c->test, "test."));
  if (j.contains("calibration"))
    BILLNET_RETURN_IF_ERROR(FromJson(j["calibration"], &c->calibration, "calibration."));
  BILLNET_RETURN_IF_ERROR(Read(j, "batch_size", &c->batch_size, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "decay_rate", &c->decay_rate, ""));
  if (j.contains("stages")) {
    const json& st = j["stages"];
    if (!st.is_array() || st.size() != 5)
      return InvalidArgument("config: 'stages' must be an array of 5 objects (S1..S5)");
    for (int s = 0; s < 5; ++s) {
      const std::string where = "stages[" + std::to_string(s) + "].";
      BILLNET_RETURN_IF_ERROR(
          CheckKeys(st[s], {"learning_rate", "epochs", "decay_epochs", "run_epochs"}, where));
      StageSchedule& ss = c->stages[s];
      BILLNET_RETURN_IF_ERROR(Read(st[s], "learning_rate", &ss.learning_rate, where));
      BILLNET_RETURN_IF_ERROR(Read(st[s], "epochs", &ss.epochs, where));
      BILLNET_RETURN_IF_ERROR(Read(st[s], "decay_epochs", &ss.decay_epochs, where));
      BILLNET_RETURN_IF_ERROR(Read(st[s], "run_epochs", &ss.run_epochs, where));
      if (!(ss.learning_rate > 0) || ss.epochs < 0 || ss.decay_epochs < 0 || ss.run_epochs < 0)
        return InvalidArgument("config: '" + where + "' values must be positive");
    }
  }
  BILLNET_RETURN_IF_ERROR(Read(j, "first_stage", &c->first_stage, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "last_stage", &c->last_stage, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "run_min", &c->run_min, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "run_max", &c->run_max, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "run_fraction", &c->run_fraction, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "pad_fraction", &c->pad_fraction, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "import_latent_weight", &c->import_latent_weight, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "bsn_anneal_epochs", &c->bsn_anneal_epochs, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "s3_threshold_pull", &c->s3_threshold_pull, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "s3_norm_lr_scale", &c->s3_norm_lr_scale, ""));
  if (!(c->s3_norm_lr_scale > 0 && c->s3_norm_lr_scale <= 1e4))
    return InvalidArgument("config: 's3_norm_lr_scale' must be in (0, 1e4]");
  BILLNET_RETURN_IF_ERROR(Read(j, "bsn_scale", &c->bsn_scale, ""));
  if (c->bsn_scale != "std" && c->bsn_scale != "rms")
    return InvalidArgument("config: 'bsn_scale' must be \"std\" or \"rms\"");
  BILLNET_RETURN_IF_ERROR(Read(j, "hold_frames", &c->hold_frames, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "seed", &c->seed, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "threads", &c->threads, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "device", &c->device, ""));
  if (c->device != "auto" && c->device != "cpu" && c->device != "cuda")
    return InvalidArgument("config: 'device' must be \"auto\", \"cpu\" or \"cuda\"");
  BILLNET_RETURN_IF_ERROR(Read(j, "max_steps_per_epoch", &c->max_steps_per_epoch, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "log_every", &c->log_every, ""));
  BILLNET_RETURN_IF_ERROR(Read(j, "write_curves", &c->write_curves, ""));
  if (c->first_stage < 1 || c->last_stage > 5 || c->first_stage > c->last_stage)
    return InvalidArgument("config: need 1 <= first_stage <= last_stage <= 5");
  if (c->batch_size < 1) return InvalidArgument("config: 'batch_size' must be >= 1");
  if (c->run_min < 1 || c->run_max < c->run_min)
    return InvalidArgument("config: need 1 <= run_min <= run_max");
  if (!(c->import_latent_weight >= 0 && c->import_latent_weight <= 1))
    return InvalidArgument("config: 'import_latent_weight' must be in [0, 1]");
  if (!(c->s3_threshold_pull >= 0 && c->s3_threshold_pull <= 1e6))
    return InvalidArgument("config: 's3_threshold_pull' must be in [0, 1e6]");
  if (c->bsn_anneal_epochs < 0 || c->bsn_anneal_epochs > c->stages[3].epochs)
    return InvalidArgument("config: 'bsn_anneal_epochs' must be in [0, S4's epochs (" +
                           std::to_string(c->stages[3].epochs) + ")]");
  if (c->run_fraction < 0 || c->run_fraction > 1 || c->pad_fraction < 0 || c->pad_fraction > 1)
    return InvalidArgument("config: 'run_fraction' and 'pad_fraction' must be in [0, 1]");
  if (!(c->decay_rate > 0 && c->decay_rate <= 1))
    return InvalidArgument("config: 'decay_rate' must be in (0, 1]");
  if (!(c->frame_rate > 0)) return InvalidArgument("config: 'frame_rate' must be > 0");
  if (c->name.empty() || c->name.find('/') != std::string::npos || c->version.empty() ||
      c->version.find('/') != std::string::npos)
    return InvalidArgument("config: 'name' and 'version' must be non-empty folder names");
  if (auto plan = BuildPlan(c->topology); !plan.ok())
    return InvalidArgument("config: topology: " + plan.status().message());
  return Status::Ok();
}

Status LoadTrainConfig(const std::string& path, TrainConfig* out) {
  std::ifstream in(path);
  if (!in) return NotFound("config '" + path + "': cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception& e) {
    return InvalidArgument("config '" + path + "': " + e.what());
  }
  return FromJson(j, out).WithContext("config '" + path + "'");
}

json ToJson(const EpochMetrics& m) {
  return {{"stage", m.stage},
          {"epoch", m.epoch},
          {"learning_rate", m.learning_rate},
          {"train_loss", m.train_loss},
          {"train_accuracy", m.train_accuracy},
          {"test_loss", m.test_loss},
          {"test_top1", m.test_top1},
          {"test_top5", m.test_top5},
          {"seconds", m.seconds},
          {"steps", m.steps}};
}

namespace {

EpochMetrics EpochMetricsFromJson(const json& j) {
  EpochMetrics m;
  m.stage = j.value("stage", 1);
  m.epoch = j.value("epoch", 0);
  m.learning_rate = j.value("learning_rate", 0.0);
  m.train_loss = j.value("train_loss", 0.0);
  m.train_accuracy = j.value("train_accuracy", 0.0);
  m.test_loss = j.value("test_loss", 0.0);
  m.test_top1 = j.value("test_top1", 0.0);
  m.test_top5 = j.value("test_top5", 0.0);
  m.seconds = j.value("seconds", 0.0);
  m.steps = j.value("steps", int64_t(0));
  return m;
}

}  // namespace

// ---- Data -------------------------------------------------------------------------

StatusOr<std::vector<Clip>> LoadClips(const DataSource& source, const ClipGeometry& geometry) {
  if (source.kind == "synth") {
    try {
      return MakeSynthData(source.synth, geometry);
    } catch (const std::exception& e) {
      return InvalidArgument(e.what());
    }
  }
#ifdef BILLNET_TRAINER_HAS_MEDIA
  JesterOptions opt;
  opt.max_clips = source.max_clips;
  opt.require_labels = true;  // training and evaluation need labelled rows
  opt.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  JesterSplit split;
  if (source.kind == "videos") {
    BILLNET_ASSIGN_OR_RETURN(split, LoadVideoList(source.dir, geometry, opt));
  } else {
    BILLNET_ASSIGN_OR_RETURN(split, LoadJesterSplit(source.dir, source.split, geometry, opt));
  }
  for (const std::string& w : split.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  return std::move(split.clips);
#else
  return Unsupported("data source '" + source.kind +
                     "': this trainer was built without media/ (FFmpeg); use kind \"synth\"");
#endif
}

double CalibrateTemperature(const std::vector<float>& scores, const std::vector<int>& labels,
                            int classes) {
  const size_t rows = labels.size();
  if (rows == 0 || classes < 1) return 1.0;
  auto nll = [&](double log_t) {
    const double inv = std::exp(-log_t);
    double total = 0;
    for (size_t r = 0; r < rows; ++r) {
      const float* s = scores.data() + r * classes;
      double mx = -1e300;
      for (int k = 0; k < classes; ++k) mx = std::max(mx, s[k] * inv);
      double sum = 0;
      for (int k = 0; k < classes; ++k) sum += std::exp(s[k] * inv - mx);
      total += std::log(sum) + mx - s[labels[r]] * inv;
    }
    return total / rows;
  };
  // Golden-section search over log T in [log 1e-3, log 1e4].
  double a = std::log(1e-3), b = std::log(1e4);
  const double g = (std::sqrt(5.0) - 1) / 2;
  double x1 = b - g * (b - a), x2 = a + g * (b - a), f1 = nll(x1), f2 = nll(x2);
  for (int i = 0; i < 80; ++i) {
    if (f1 < f2) {
      b = x2, x2 = x1, f2 = f1, x1 = b - g * (b - a), f1 = nll(x1);
    } else {
      a = x1, x1 = x2, f1 = f2, x2 = a + g * (b - a), f2 = nll(x2);
    }
  }
  return std::exp((a + b) / 2);
}

// ---- The training loop ------------------------------------------------------------

namespace {

uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// One optimizer step's data, drawn when the epoch is planned.
struct BatchPlan {
  bool run = false;        // a run of consecutive stream windows
  int windows = 1;         // run length
  std::vector<int> items;  // clip indices (clips or streams)
  // First frame per item as a fraction of the valid starts, resolved against
  // the clip when the step runs (so a plan depends only on the data's size).
  std::vector<double> starts;
  std::vector<int> limits;  // real-frame cap per item (0: none)
};

struct RunState {
  int stage = 1;  // the stage being trained
  int epoch = 0;  // epochs completed in it
  std::vector<EpochMetrics> history;
};

json ToJson(const RunState& s) {
  json h = json::array();
  for (const EpochMetrics& m : s.history) h.push_back(ToJson(m));
  return {{"stage", s.stage}, {"epoch", s.epoch}, {"history", h}};
}

RunState RunStateFromJson(const json& j) {
  RunState s;
  s.stage = j.at("stage").get<int>();
  s.epoch = j.at("epoch").get<int>();
  for (const json& m : j.at("history")) s.history.push_back(EpochMetricsFromJson(m));
  return s;
}

Status WriteTextAtomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return Internal("cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Internal("cannot rename to '" + path.string() + "': " + ec.message());
  return Status::Ok();
}

std::string FormatDuration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  char buf[32];
  const int t = int(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t % 3600) / 60);
  else
    std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  return buf;
}

class Trainer {
 public:
  Trainer(const TrainConfig& config, const TrainCallbacks& callbacks)
      : config_(config), callbacks_(callbacks) {}

  Status Run();

 private:
  Status Prepare();
  // Fresh synthetic training data for (stage, epoch) when configured.
  Status LoadEpochData(int stage, int epoch);
  Status Resume();
  Status ReestimateImportedNorms();
  Status SaveCheckpoint();
  std::vector<BatchPlan> PlanEpoch(int stage, int epoch) const;
  int64_t EpochSteps(int stage, int epoch) const { return int64_t(PlanEpoch(stage, epoch).size()); }
  double LearningRate(int stage, int epoch) const;
  // Trains one step; returns (loss sum, correct steps, steps).
  void Step(const BatchPlan& plan, torch::optim::Adam& opt, double* loss, int64_t* correct,
            int64_t* steps);
  torch::Tensor Video(const std::vector<const Window*>& windows) const;
  Status ExportStage(int stage, const EvalResult& test);
  void Report(const Progress& p) const;
  void Log(const std::string& line) const;

  TrainConfig config_;
  TrainCallbacks callbacks_;
  TopologyPlan plan_;
  ClipGeometry geometry_;
  BillnetModel model_{nullptr};
  std::vector<Clip> clips_, streams_, test_, calibration_;
  // Training clips and streams per epoch (known before a fresh epoch renders).
  size_t n_clips_ = 0, n_streams_ = 0;
  RunState state_;
  fs::path ckpt_dir_, version_dir_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  // Adam for `stage`: one group, or in S3 with s3_norm_lr_scale != 1 two
  // (everything else, then the norms' gamma and beta).
  std::unique_ptr<torch::optim::Adam> MakeOptimizer(int stage);
  // Sets each group's learning rate for (stage, epoch).
  void SetLearningRates(int stage, int epoch);
  double seconds_per_window_ = 0;  // measured, for the ETA
  json provenance_data_;
};

void Trainer::Log(const std::string& line) const {
  Progress p;
  p.stage = state_.stage;
  p.message = line;
  Report(p);
}

void Trainer::Report(const Progress& p) const {
  if (callbacks_.on_progress) callbacks_.on_progress(p);
}

double Trainer::LearningRate(int stage, int epoch) const {
  const StageSchedule& s = config_.stages[stage - 1];
  const int decay_from = s.epochs - s.decay_epochs;
  const int k = epoch >= decay_from ? epoch - decay_from + 1 : 0;
  return s.learning_rate * std::pow(config_.decay_rate, k);
}

std::vector<BatchPlan> Trainer::PlanEpoch(int stage, int epoch) const {
  std::mt19937_64 rng(Mix(Mix(config_.seed, uint64_t(stage)), uint64_t(epoch)));
  const StageSchedule& s = config_.stages[stage - 1];
  const int frames = plan_.config.frames, batch = config_.batch_size;
  const bool runs = n_streams_ > 0 && epoch >= s.epochs - s.run_epochs && config_.run_fraction > 0;
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<int> order(n_clips_);
  for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
  std::shuffle(order.begin(), order.end(), rng);
  const double run_share = runs ? config_.run_fraction : 0.0;
  const size_t n_clip_windows = size_t(std::lround(double(order.size()) * (1 - run_share)));
  order.resize(std::min(order.size(), n_clip_windows));
  std::vector<BatchPlan> plans;
  for (size_t i = 0; i < order.size(); i += batch) {
    BatchPlan b;
    for (size_t k = i; k < std::min(order.size(), i + batch); ++k) {
      b.items.push_back(order[k]);
      b.starts.push_back(unit(rng));
      int limit = 0;
      if (unit(rng) < config_.pad_fraction)
        limit = std::uniform_int_distribution<int>(frames / 2, frames - 1)(rng);
      b.limits.push_back(limit);
    }
    plans.push_back(std::move(b));
  }
  if (runs) {
    const double mean_run = (config_.run_min + config_.run_max) / 2.0;
    const int n_runs = int(std::lround(double(n_clips_) * run_share / (mean_run * batch)));
    for (int r = 0; r < std::max(1, n_runs); ++r) {
      BatchPlan b;
      b.run = true;
      b.windows = std::uniform_int_distribution<int>(config_.run_min, config_.run_max)(rng);
      for (int k = 0; k < batch; ++k) {
        const int item = std::uniform_int_distribution<int>(0, int(n_streams_) - 1)(rng);
        b.items.push_back(item);
        b.starts.push_back(unit(rng));
        b.limits.push_back(0);
      }
      plans.push_back(std::move(b));
    }
    std::shuffle(plans.begin(), plans.end(), rng);
  }
  if (config_.max_steps_per_epoch > 0 && int(plans.size()) > config_.max_steps_per_epoch)
    plans.resize(config_.max_steps_per_epoch);
  return plans;
}

torch::Tensor Trainer::Video(const std::vector<const Window*>& windows) const {
  const int64_t t = plan_.config.frames, h = plan_.config.height, w = plan_.config.width;
  torch::Tensor v = torch::empty({int64_t(windows.size()), t, h, w, 3}, torch::kUInt8);
  const size_t bytes = size_t(t * h * w * 3);
  for (size_t i = 0; i < windows.size(); ++i)
    std::memcpy(v.data_ptr<uint8_t>() + i * bytes, windows[i]->rgb.data(), bytes);
  return v;
}

void Trainer::Step(const BatchPlan& b, torch::optim::Adam& opt, double* loss_sum, int64_t* correct,
                   int64_t* steps) {
  const int frames = plan_.config.frames, nsteps = plan_.steps, k = plan_.config.classes;
  const int no_gesture = synth::kNoGesture < k ? synth::kNoGesture : k - 1;
  opt.zero_grad();
  torch::Tensor h, c;
  for (int r = 0; r < b.windows; ++r) {
    std::vector<Window> windows;
    std::vector<int64_t> labels;
    for (size_t i = 0; i < b.items.size(); ++i) {
      const Clip& clip = b.run ? streams_[b.items[i]] : clips_[b.items[i]];
      const int max_start = std::max(0, clip.frames - b.windows * frames);
      const int start = std::min(max_start, int(b.starts[i] * (max_start + 1)));
      windows.push_back(CutWindow(clip, start + r * frames, frames, nsteps, no_gesture,
                                  config_.hold_frames, b.limits[i]));
      for (int l : windows.back().step_labels) labels.push_back(l);
    }
    std::vector<const Window*> ptrs;
    for (const Window& w : windows) ptrs.push_back(&w);
    ForwardResult out = model_->forward(Video(ptrs), h, c);
    torch::Tensor target = torch::tensor(labels, torch::kInt64).to(model_->lstm_ih.device());
    torch::Tensor logits = out.logits.reshape({-1, k});
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, target);
    (loss / double(b.windows)).backward();
    h = out.h.detach();
    c = out.c.detach();
    *loss_sum += loss.item<double>() * double(labels.size());
    *correct += logits.argmax(1).eq(target).sum().item<int64_t>();
    *steps += int64_t(labels.size());
  }
  if (model_->stage() == Stage::kS3 && config_.s3_threshold_pull > 0)
    (ThresholdGapPenalty(*model_) * config_.s3_threshold_pull).backward();
  opt.step();
}

std::unique_ptr<torch::optim::Adam> Trainer::MakeOptimizer(int stage) {
  const double lr = LearningRate(stage, 0);
  if (stage != 3 || config_.s3_norm_lr_scale == 1)
    return std::make_unique<torch::optim::Adam>(model_->parameters(), torch::optim::AdamOptions(lr));
  std::vector<torch::Tensor> norm, other;
  std::set<const void*> in_norm;
  for (auto& [name, bn] : model_->norms()) {
    norm.push_back(bn->weight);
    norm.push_back(bn->bias);
    in_norm.insert(bn->weight.unsafeGetTensorImpl());
    in_norm.insert(bn->bias.unsafeGetTensorImpl());
  }
  for (const torch::Tensor& p : model_->parameters())
    if (!in_norm.count(p.unsafeGetTensorImpl())) other.push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(other, std::make_unique<torch::optim::AdamOptions>(lr));
  groups.emplace_back(norm,
                      std::make_unique<torch::optim::AdamOptions>(lr * config_.s3_norm_lr_scale));
  return std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(lr));
}

void Trainer::SetLearningRates(int stage, int epoch) {
  const double lr = LearningRate(stage, epoch);
  auto& groups = optimizer_->param_groups();
  for (size_t i = 0; i < groups.size(); ++i)
    static_cast<torch::optim::AdamOptions&>(groups[i].options())
        .lr(i == 1 ? lr * config_.s3_norm_lr_scale : lr);
}

Status Trainer::Prepare() {
  BILLNET_ASSIGN_OR_RETURN(plan_, BuildPlan(config_.topology));
  geometry_ = ClipGeometry{config_.topology.height, config_.topology.width, config_.frame_rate};
  if (config_.threads > 0) torch::set_num_threads(config_.threads);
  torch::manual_seed(config_.seed);
  model_ = BillnetModel(plan_);
  model_->set_bsn_rms(config_.bsn_scale == "rms");
  if (config_.device == "cuda" && !torch::cuda::is_available())
    return Unsupported("config: device \"cuda\" but libtorch sees no CUDA device");
  if (config_.device == "cuda" || (config_.device == "auto" && torch::cuda::is_available())) {
    model_->to(torch::kCUDA);
    Log("training on CUDA");
  }
  ckpt_dir_ = config_.checkpoint_dir;
  version_dir_ = fs::path(config_.repo) / config_.name / config_.version;
  std::error_code ec;
  fs::create_directories(ckpt_dir_, ec);
  if (ec) return Internal("cannot create '" + ckpt_dir_.string() + "': " + ec.message());
  fs::create_directories(version_dir_, ec);
  if (ec) return Internal("cannot create '" + version_dir_.string() + "': " + ec.message());

  auto t0 = std::chrono::steady_clock::now();
  if (config_.train.kind == "synth" && config_.train.fresh_each_epoch) {
    // Every epoch renders its own clips (LoadEpochData); here only their
    // number and classes.
    const SynthDataSpec& spec = config_.train.synth;
    const int classes = spec.labels.empty() ? synth::kNumClasses : int(spec.labels.size());
    n_clips_ = size_t(spec.clips_per_class) * classes;
    n_streams_ = size_t(spec.streams);
    int max_label = spec.labels.empty() ? synth::kNumClasses - 1 : -1;
    for (int l : spec.labels) max_label = std::max(max_label, l);
    if (max_label >= plan_.config.classes)
      return InvalidArgument("data: synthetic training label " + std::to_string(max_label) +
                             " outside the model's " + std::to_string(plan_.config.classes) +
                             " classes");
  } else {
    BILLNET_RETURN_IF_ERROR(LoadEpochData(0, 0));
  }
  BILLNET_ASSIGN_OR_RETURN(test_, LoadClips(config_.test, geometry_));
  BILLNET_ASSIGN_OR_RETURN(calibration_, LoadClips(config_.calibration, geometry_));
  auto only_clips = [](std::vector<Clip>* v) {
    v->erase(std::remove_if(v->begin(), v->end(), [](const Clip& c) { return c.label < 0; }),
             v->end());
  };
  only_clips(&test_);
  only_clips(&calibration_);
  if (n_clips_ == 0) return InvalidArgument("training data: no clips");
  if (test_.empty()) return InvalidArgument("test data: no clips");
  for (const auto* set : {&clips_, &test_, &calibration_})
    for (const Clip& c : *set)
      if (c.label < 0 || c.label >= plan_.config.classes)
        return InvalidArgument("data: clip '" + c.id + "' has label " + std::to_string(c.label) +
                               " outside the model's " + std::to_string(plan_.config.classes) +
                               " classes");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char buf[160];
  std::snprintf(buf, sizeof buf, "data: %zu clips, %zu streams, %zu test, %zu calibration (%.1f s)",
                n_clips_, n_streams_, test_.size(), calibration_.size(), secs);
  Log(buf);
  provenance_data_ = {{"train", ToJson(config_.train)},
                      {"test", ToJson(config_.test)},
                      {"calibration", ToJson(config_.calibration)}};
  return Status::Ok();
}

Status Trainer::LoadEpochData(int stage, int epoch) {
  const bool fresh = config_.train.kind == "synth" && config_.train.fresh_each_epoch;
  if (!clips_.empty() && !fresh) return Status::Ok();
  DataSource src = config_.train;
  if (fresh) {
    src.synth = EpochSynthSpec(config_.train, stage, epoch);
    src.synth.seed = Mix(Mix(config_.train.synth.seed, uint64_t(stage)), uint64_t(epoch));
  }
  BILLNET_ASSIGN_OR_RETURN(std::vector<Clip> train, LoadClips(src, geometry_));
  clips_.clear();
  streams_.clear();
  for (Clip& c : train) (c.frame_labels.empty() ? clips_ : streams_).push_back(std::move(c));
  n_clips_ = clips_.size();
  n_streams_ = streams_.size();
  return Status::Ok();
}

Status Trainer::SaveCheckpoint() {
  try {
    torch::serialize::OutputArchive archive;
    model_->save(archive);
    if (optimizer_) {
      torch::serialize::OutputArchive opt;
      optimizer_->save(opt);
      archive.write("optimizer", opt);
    }
    archive.write("run_state", c10::IValue(ToJson(state_).dump()));
    archive.write("config", c10::IValue(ToJson(config_).dump()));
    const fs::path path = ckpt_dir_ / "checkpoint.pt", tmp = ckpt_dir_ / "checkpoint.pt.tmp";
    archive.save_to(tmp.string());
    fs::rename(tmp, path);
  } catch (const std::exception& e) {
    return Internal(std::string("checkpoint: ") + e.what());
  }
  return WriteTextAtomic(ckpt_dir_ / "state.json", ToJson(state_).dump(2) + "\n");
}

// Imported norms hold in eval mode only (see ReestimateNorms): re-estimate
// them on the calibration clips (the test clips when there are none).
Status Trainer::ReestimateImportedNorms() {
  const std::vector<Clip>& clips = calibration_.empty() ? test_ : calibration_;
  if (clips.empty()) return Status::Ok();
  try {
    ReestimateNorms(*model_, [&] { EvaluateTorch(*model_, clips, config_.batch_size); });
    NormalizeBinaryNormScales(*model_);
    if (config_.import_latent_weight > 0)
      ShrinkBinaryLatentWeights(*model_, config_.import_latent_weight);
  } catch (const std::exception& e) {
    return Internal(std::string("re-estimating norms: ") + e.what());
  }
  Log("re-estimated norm statistics on " + std::to_string(clips.size()) + " clips");
  return Status::Ok();
}

Status Trainer::Resume() {
  const fs::path path = ckpt_dir_ / "checkpoint.pt";
  if (fs::exists(path)) {
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(path.string());
      c10::IValue config_v, state_v;
      archive.read("config", config_v);
      archive.read("run_state", state_v);
      TrainConfig saved = config_;
      BILLNET_RETURN_IF_ERROR(FromJson(json::parse(config_v.toStringRef()), &saved));
      if (!(saved.topology == config_.topology) || saved.name != config_.name ||
          saved.version != config_.version)
        return InvalidArgument("checkpoint '" + path.string() +
                               "' belongs to another model or topology (" + saved.name + "/" +
                               saved.version + "); use another checkpoint_dir or delete it");
      model_->load(archive);
      state_ = RunStateFromJson(json::parse(state_v.toStringRef()));
      model_->set_stage(Stage(state_.stage));
      optimizer_ = MakeOptimizer(state_.stage);
      if (state_.epoch > 0) {
        torch::serialize::InputArchive opt;
        if (archive.try_read("optimizer", opt)) optimizer_->load(opt);
      }
    } catch (const std::exception& e) {
      return Corruption("checkpoint '" + path.string() + "': " + e.what());
    }
    Log("resumed from " + path.string() + " at S" + std::to_string(state_.stage) + " epoch " +
        std::to_string(state_.epoch));
    return Status::Ok();
  }
  // No checkpoint: continue after the last stage file of this version.
  state_ = RunState{config_.first_stage, 0, {}};
  bool from_own_file = false;
  for (int s = config_.last_stage; s >= 1; --s) {
    const fs::path file = version_dir_ / (StageName(s) + ".safetensors");
    if (!fs::exists(file)) continue;
    if (s < config_.first_stage - 1) break;
    BILLNET_ASSIGN_OR_RETURN(auto m, Model::LoadFile(file.string()));
    BILLNET_RETURN_IF_ERROR(ImportWeights(*model_, *m).WithContext(file.string()));
    BILLNET_RETURN_IF_ERROR(ReestimateImportedNorms());
    state_.stage = s + 1;
    from_own_file = true;
    Log("starting from stage file " + file.string());
    break;
  }
  if (!from_own_file && !config_.init_from.empty()) {
    // A new version continuing another's weights (init_from).
    const std::string& file = config_.init_from;
    if (!fs::exists(file)) return NotFound("init_from '" + file + "': no such file");
    BILLNET_ASSIGN_OR_RETURN(auto m, Model::LoadFile(file));
    if (int(m->info().stage) > config_.first_stage)
      return InvalidArgument("init_from '" + file + "' is a stage " +
                             std::to_string(int(m->info().stage)) +
                             " file; it cannot start the earlier stage " +
                             std::to_string(config_.first_stage));
    BILLNET_RETURN_IF_ERROR(ImportWeights(*model_, *m).WithContext("init_from '" + file + "'"));
    BILLNET_RETURN_IF_ERROR(ReestimateImportedNorms());
    Log("starting S" + std::to_string(config_.first_stage) + " from init_from " + file);
  } else if (!from_own_file && config_.first_stage > 1) {
    const fs::path file = version_dir_ / (StageName(config_.first_stage - 1) + ".safetensors");
    if (!fs::exists(file))
      return NotFound("first_stage " + std::to_string(config_.first_stage) + " needs '" +
                      file.string() + "'");
  }
  model_->set_stage(Stage(std::min(state_.stage, 5)));
  return Status::Ok();
}

Status Trainer::ExportStage(int stage, const EvalResult& test) {
  model_->eval();
  model_->set_stage(Stage(stage));
  // Temperature on the engine's raw scores (S5: integers = logits / dense scale).
  const double to_engine = stage == 5 ? 1.0 / DenseWeightScale(plan_) : 1.0;
  const std::vector<Clip>& calib = calibration_.empty() ? test_ : calibration_;
  EvalResult cal = EvaluateTorch(*model_, calib, config_.batch_size);
  std::vector<float> scores;
  std::vector<int> labels;
  for (size_t i = 0; i < calib.size(); ++i)
    for (int s = 0; s < cal.real_steps[i]; ++s) {
      for (int k = 0; k < plan_.config.classes; ++k)
        scores.push_back(float(cal.logits[i][s * plan_.config.classes + k] * to_engine));
      labels.push_back(calib[i].label);
    }
  ModelInfo info;
  info.name = config_.name;
  info.frame_rate = config_.frame_rate;
  info.temperature = CalibrateTemperature(scores, labels, plan_.config.classes);
  if (config_.train.kind == "synth" && plan_.config.classes == synth::kNumClasses)
    info.labels = synth::SynthClassNames();
  json epochs = json::array();
  for (const StageSchedule& s : config_.stages) epochs.push_back(s.epochs);
  json prov = {{"trainer", "billnet-trainer"},
               {"version", config_.version},
               {"data", provenance_data_},
               {"seed", config_.seed},
               {"init_from", config_.init_from},
               {"epochs", epochs},
               {"batch_size", config_.batch_size},
               {"stage_learning_rate", config_.stages[stage - 1].learning_rate},
               {"test_top1", test.top1},
               {"test_top5", test.top5},
               {"test_clips", test_.size()},
               {"temperature_calibration_clips", calib.size()}};
  info.provenance = prov.dump();
  const fs::path file = version_dir_ / (StageName(stage) + ".safetensors");
  BILLNET_RETURN_IF_ERROR(WriteStageFile(*model_, Stage(stage), info, file.string()));
  char buf[200];
  std::snprintf(buf, sizeof buf, "exported %s (test top-1 %.2f%%, top-5 %.2f%%, T %.3g)",
                file.string().c_str(), 100 * test.top1, 100 * test.top5, info.temperature);
  Log(buf);
  return Status::Ok();
}

Status Trainer::Run() {
  BILLNET_RETURN_IF_ERROR(Prepare());
  BILLNET_RETURN_IF_ERROR(Resume());
  const fs::path metrics_path = ckpt_dir_ / "metrics.jsonl";
  // Rewrite the metrics file from the checkpoint's history (drops epochs a
  // killed run logged after its last checkpoint).
  {
    std::string text;
    for (const EpochMetrics& m : state_.history) text += ToJson(m).dump() + "\n";
    BILLNET_RETURN_IF_ERROR(WriteTextAtomic(metrics_path, text));
  }
  auto remaining_windows = [&]() {
    double w = 0;
    for (int s = state_.stage; s <= config_.last_stage; ++s)
      for (int e = s == state_.stage ? state_.epoch : 0; e < config_.stages[s - 1].epochs; ++e)
        for (const BatchPlan& b : PlanEpoch(s, e)) w += double(b.items.size()) * b.windows;
    return w;
  };
  double total_left = remaining_windows();
  while (state_.stage <= config_.last_stage) {
    const int stage = state_.stage;
    const StageSchedule& sched = config_.stages[stage - 1];
    model_->set_stage(Stage(stage));
    if (!optimizer_) optimizer_ = MakeOptimizer(stage);
    while (state_.epoch < sched.epochs) {
      const int epoch = state_.epoch;
      const double lr = LearningRate(stage, epoch);
      SetLearningRates(stage, epoch);
      BILLNET_RETURN_IF_ERROR(LoadEpochData(stage, epoch));
      if (config_.train.kind == "synth" && config_.train.fresh_each_epoch &&
          (config_.train.curriculum_epochs > 0 || !config_.train.class_curriculum.empty())) {
        const SynthDataSpec spec = EpochSynthSpec(config_.train, stage, epoch);
        char buf[128];
        std::snprintf(buf, sizeof buf, "S%d epoch %d: scene difficulty %.2f, %d classes", stage,
                      epoch + 1, spec.difficulty,
                      spec.labels.empty() ? synth::kNumClasses : int(spec.labels.size()));
        Log(buf);
      }
      const std::vector<BatchPlan> plans = PlanEpoch(stage, epoch);
      // S4's offset anneal: lambda from 1 to 0 over its first epochs' steps.
      const bool anneal = stage == 4 && epoch < config_.bsn_anneal_epochs;
      auto anneal_lambda = [&](size_t step) {
        const double total = double(config_.bsn_anneal_epochs) * double(plans.size());
        return std::max(0.0, 1.0 - (double(epoch) * double(plans.size()) + double(step) + 1) / total);
      };
      if (anneal) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "S4 epoch %d: BSN offset anneal, lambda %.3f -> %.3f",
                      epoch + 1, anneal_lambda(0), anneal_lambda(plans.size() - 1));
        Log(buf);
      }
      model_->train();
      double loss_sum = 0;
      int64_t correct = 0, steps = 0;
      auto t0 = std::chrono::steady_clock::now();
      double windows_done = 0;
      for (size_t i = 0; i < plans.size(); ++i) {
        if (callbacks_.cancel && callbacks_.cancel->load())
          return Cancelled("cancelled at S" + std::to_string(stage) + " epoch " +
                           std::to_string(epoch) + " step " + std::to_string(i));
        model_->set_bsn_anneal(anneal ? anneal_lambda(i) : 0.0);
        try {
          Step(plans[i], *optimizer_, &loss_sum, &correct, &steps);
        } catch (const std::exception& e) {
          return Internal(std::string("training step: ") + e.what());
        }
        windows_done += double(plans[i].items.size()) * plans[i].windows;
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        seconds_per_window_ = elapsed / windows_done;
        if ((config_.log_every > 0 && (i + 1) % config_.log_every == 0) || i + 1 == plans.size()) {
          Progress p;
          p.stage = stage;
          p.epoch = epoch;
          p.epochs = sched.epochs;
          p.step = int64_t(i + 1);
          p.steps = int64_t(plans.size());
          p.loss = loss_sum / std::max<int64_t>(steps, 1);
          p.accuracy = double(correct) / std::max<int64_t>(steps, 1);
          p.learning_rate = lr;
          p.seconds_per_step = elapsed / double(i + 1);
          p.eta_seconds = (total_left - windows_done) * seconds_per_window_;
          Report(p);
        }
      }
      total_left -= windows_done;
      model_->set_bsn_anneal(0);
      EpochMetrics m;
      m.stage = stage;
      m.epoch = epoch;
      m.learning_rate = lr;
      m.train_loss = loss_sum / std::max<int64_t>(steps, 1);
      m.train_accuracy = double(correct) / std::max<int64_t>(steps, 1);
      m.steps = int64_t(plans.size());
      EvalResult test;
      try {
        test = EvaluateTorch(*model_, test_, config_.batch_size);
      } catch (const std::exception& e) {
        return Internal(std::string("evaluation: ") + e.what());
      }
      m.test_loss = test.loss;
      m.test_top1 = test.top1;
      m.test_top5 = test.top5;
      m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      state_.history.push_back(m);
      state_.epoch = epoch + 1;
      const bool stage_done = state_.epoch >= sched.epochs;
      if (stage_done) {
        try {
          BILLNET_RETURN_IF_ERROR(ExportStage(stage, test));
        } catch (const std::exception& e) {
          return Internal(std::string("export: ") + e.what());
        }
        state_.stage = stage + 1;
        state_.epoch = 0;
        optimizer_.reset();
        if (state_.stage <= 5) model_->set_stage(Stage(state_.stage));
      }
      BILLNET_RETURN_IF_ERROR(SaveCheckpoint());
      {
        std::ofstream out(metrics_path, std::ios::app);
        out << ToJson(m).dump() << "\n";
      }
      if (config_.write_curves) {
        if (Status s = WriteTrainingCurves(state_.history, (ckpt_dir_ / "curves.png").string());
            !s.ok())
          Log("curves: " + s.message());
      }
      if (callbacks_.on_epoch) callbacks_.on_epoch(m);
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "S%d epoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f top-1 %.2f%% "
                    "top-5 %.2f%% (%s)",
                    stage, epoch + 1, sched.epochs, m.train_loss, 100 * m.train_accuracy,
                    m.test_loss, 100 * m.test_top1, 100 * m.test_top5,
                    FormatDuration(m.seconds).c_str());
      Log(buf);
      if (stage_done) break;
    }
    if (state_.stage == stage) {  // a stage with 0 epochs: export as is
      EvalResult test = EvaluateTorch(*model_, test_, config_.batch_size);
      BILLNET_RETURN_IF_ERROR(ExportStage(stage, test));
      state_.stage = stage + 1;
      state_.epoch = 0;
      optimizer_.reset();
      BILLNET_RETURN_IF_ERROR(SaveCheckpoint());
    }
  }
  return Status::Ok();
}

}  // namespace

Status Train(const TrainConfig& config, const TrainCallbacks& callbacks) {
  try {
    Trainer t(config, callbacks);
    return t.Run();
  } catch (const std::exception& e) {
    return Internal(std::string("trainer: ") + e.what());
  }
}

}  // namespace billnet::trainer
