// The five-stage quantization-aware training of BILLNET (paper section IV and
// V.A; DESIGN.md section 2.7): configuration, the resumable training loop,
// per-stage export, and temperature calibration.
//
// A run trains stages first_stage..last_stage in order; each stage starts from
// the previous stage's weights with a fresh Adam, a constant learning rate and
// an exponential decay over its last `decay_epochs`. After every epoch the
// model, the optimizer and the progress are checkpointed (atomically) in
// checkpoint_dir; Train() continues from there after an interruption, and an
// epoch replayed from a checkpoint gives exactly the same weights as an
// uninterrupted run (the data order of every epoch is a function of the seed,
// stage and epoch). Without a checkpoint, a run whose version folder already
// holds stage files resumes at the stage after the last one.
//
// Errors: Train() returns a Status for configuration, data and file errors;
// libtorch exceptions are caught at this boundary.
#ifndef BILLNET_TRAINER_TRAINING_H_
#define BILLNET_TRAINER_TRAINING_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "billnet/model.h"
#include "billnet/status.h"
#include "billnet/topology.h"
#include "billnet/trainer/data.h"

namespace billnet::trainer {

struct StageSchedule {
  double learning_rate = 5e-4;
  int epochs = 4;
  int decay_epochs = 2;  // the last epochs, lr *= decay_rate each
  // The last `run_epochs` also train on runs of consecutive stream windows
  // with the LSTM state carried (truncated back-propagation at boundaries).
  int run_epochs = 1;
};

struct DataSource {
  // "synth"; "jester" (a Jester-layout folder) or "videos" (a `file;label`
  // index CSV in `dir`): these two need the media build.
  SynthDataSpec synth;
  // Training data only: render a new set of clips for every epoch (seeded by
  // seed, stage and epoch) instead of repeating one set. A fixed set of ~1000
  // clips is memorized long before the motion is learned (docs/trainer.md).
  bool fresh_each_epoch = false;
  // Training data with fresh_each_epoch only: a scene-difficulty curriculum.
  // Stage S1's epoch e renders at difficulty synth.difficulty + (1 -
  // synth.difficulty) * min(1, e / curriculum_epochs); later epochs and
  // stages at 1. 0: no curriculum (synth.difficulty throughout).
  int curriculum_epochs = 0;
  // Training data with fresh_each_epoch only: a class curriculum run before
  // the difficulty ramp. Stage S1's first phases[0].epochs epochs render only
  // phases[0].labels, the next phases[1].epochs only phases[1].labels, and so
  // on; each phase renders as many clips as the full class set would
  // (clips_per_class x classes, spread over the phase's classes). The
  // difficulty ramp starts after the last phase. Empty: none.
  struct ClassPhase {
    int epochs = 0;
    std::vector<int> labels;
  };
  std::vector<ClassPhase> class_curriculum;
  std::string kind = "synth";
  std::string dir;              // jester: dataset folder; videos: index CSV
  std::string split = "train";  // jester: split name
  int max_clips = 0;            // 0: all
};

struct TrainConfig {
  std::string name = "billnet-2x-synth";
  std::string version = "1";
  TopologyConfig topology = Billnet2x();
  double frame_rate = 6;
  std::string repo = "models";                 // exports go to repo/name/version/
  std::string checkpoint_dir = "checkpoints";  // per run; outside git
  // A stage file whose weights start first_stage when this version has no
  // checkpoint and no stage file yet: a new version that continues another's
  // training (same topology). "" starts from the seed's random weights.
  std::string init_from;
  DataSource train, test, calibration;
  int batch_size = 16;
  double decay_rate = 0.85;
  std::array<StageSchedule, 5> stages;
  int first_stage = 1, last_stage = 5;
  int run_min = 2, run_max = 4;  // windows per run
  double run_fraction = 0.5;     // share of windows from runs in run epochs
  double pad_fraction = 0.1;     // share of clip windows end-padded at random
  // > 0: binary latent weights imported from an S2+ stage file are scaled to
  // +-this (ShrinkBinaryLatentWeights), so Adam can flip them; 0: kept at +-1
  // (a file's weights then barely move). docs/trainer.md has the measurements.
  double import_latent_weight = 0;
  // > 0: S4's first this many epochs move the norms' thresholds from their S3
  // values to BSN's 0 linearly, step by step (BillnetModelImpl::
  // set_bsn_anneal); 0: at once (the paper). At most S4's epochs.
  int bsn_anneal_epochs = 0;
  // > 0: every S3 step adds this times ThresholdGapPenalty to the loss, so S3
  // learns decision boundaries near x = 0, where S4's BSN puts them; 0: off.
  double s3_threshold_pull = 0;
  // S3's norm parameters (gamma, beta) learn at this times S3's learning rate
  // (their own Adam group), so the pull can move the thresholds; 1: one group.
  double s3_norm_lr_scale = 1;
  // S4-S5 training divides by the batch's "std" (default) or "rms" before the
  // power-of-two rounding (BillnetModelImpl::set_bsn_rms); inference is the
  // same either way.
  std::string bsn_scale = "std";
  int hold_frames = 3;           // stream step labels: hold a gesture this long
  uint64_t seed = 42;
  int threads = 0;              // torch intra-op threads; 0: hardware
  std::string device = "auto";  // "auto" (CUDA when libtorch sees one), "cpu", "cuda"
  int max_steps_per_epoch = 0;  // 0: whole epochs (tests cap it)
  int log_every = 10;           // steps between progress lines
  bool write_curves = true;     // Fig. 4 PNG beside the metrics

  // Paper learning rates; epochs of DESIGN.md 2.7.
  static TrainConfig Default();
};

// The scene difficulty of the training data rendered for (stage 1..5,
// 0-based epoch) under `d`'s curriculum (DataSource::curriculum_epochs).
double EpochDifficulty(const DataSource& d, int stage, int epoch);
// The synthetic spec rendered for (stage, epoch): labels, clips per class and
// difficulty under `d`'s class and difficulty curricula; seed unchanged.
SynthDataSpec EpochSynthSpec(const DataSource& d, int stage, int epoch);

nlohmann::json ToJson(const TrainConfig& c);
// Fills `out` from JSON over the defaults; unknown keys and bad values are an
// InvalidArgument naming the key.
Status FromJson(const nlohmann::json& j, TrainConfig* out);
Status LoadTrainConfig(const std::string& path, TrainConfig* out);

struct Progress {
  int stage = 1;
  int epoch = 0, epochs = 0;      // epoch is 0-based
  int64_t step = 0, steps = 0;    // within the epoch
  double loss = 0, accuracy = 0;  // running means over the epoch
  double learning_rate = 0;
  double seconds_per_step = 0;
  double eta_seconds = 0;  // whole run
  std::string message;     // "", or a line of news (exported, resumed, ...)
};

struct EpochMetrics {
  int stage = 1, epoch = 0;
  double learning_rate = 0;
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_top1 = 0, test_top5 = 0;
  double seconds = 0;
  int64_t steps = 0;
};
nlohmann::json ToJson(const EpochMetrics& m);

struct TrainCallbacks {
  std::function<void(const Progress&)> on_progress;
  std::function<void(const EpochMetrics&)> on_epoch;
  // Polled between steps; true stops the run at once (the last epoch
  // checkpoint stays, so a later Train continues from it).
  const std::atomic<bool>* cancel = nullptr;
};

// Trains per `config`. Returns OK when last_stage is exported, Cancelled when
// `callbacks.cancel` stopped it, another error for bad configuration, data or
// files.
Status Train(const TrainConfig& config, const TrainCallbacks& callbacks = {});

// Loads the clips of a data source at `geometry` (synth rendering or the
// Jester reader). Unsupported when a jester source is asked for in a build
// without media.
StatusOr<std::vector<Clip>> LoadClips(const DataSource& source, const ClipGeometry& geometry);

// The temperature T minimizing the mean negative log-likelihood of
// softmax(scores / T) against `labels` (rows of `classes` scores).
double CalibrateTemperature(const std::vector<float>& scores, const std::vector<int>& labels,
                            int classes);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_TRAINING_H_
