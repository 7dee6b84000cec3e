// Evaluation and verification of trained models (issue 3 items 4 and 5;
// DESIGN.md sections 2.5, 2.6 and 3).
//
// Every clip is evaluated on one window, cut at its centre (the paper's test
// protocol; shorter clips are end-padded), and labelled as the server labels a
// clip: the class with the highest mean probability over the steps that cover
// at least one real frame.
#ifndef BILLNET_TRAINER_EVALUATE_H_
#define BILLNET_TRAINER_EVALUATE_H_

#include <memory>
#include <string>
#include <vector>

#include "billnet/model.h"
#include "billnet/status.h"
#include "billnet/trainer/billnet_model.h"
#include "billnet/trainer/clip.h"

namespace billnet::trainer {

struct EvalResult {
  double loss = 0;  // mean cross-entropy over real steps (of the softmax used)
  double top1 = 0, top5 = 0;
  std::vector<std::vector<double>> logits;  // per clip: steps x classes raw scores
  std::vector<int> real_steps;              // per clip
  std::vector<int> predicted;               // per clip
  // confusion[true][predicted] counts.
  std::vector<std::vector<int64_t>> confusion;
};

// The torch model's eval-mode forward in its current stage, temperature 1,
// batches of `batch` windows. Leaves the model in eval mode. Throws libtorch
// exceptions (callers inside trainer/ catch them).
EvalResult EvaluateTorch(BillnetModelImpl& model, const std::vector<Clip>& clips, int batch);

// The engine on a model file, probabilities with the file's temperature;
// `threads` sessions in parallel (0: hardware concurrency).
StatusOr<EvalResult> EvaluateEngine(const std::shared_ptr<const Model>& model,
                                    const std::vector<Clip>& clips, int threads = 0);

struct VerifyOptions {
  double relative_tolerance = 1e-4;  // S1-S4 float outputs (DESIGN.md 2.6)
  int threads = 0;
  int max_reported = 10;  // violation messages kept
};

struct VerifyReport {
  Stage stage = Stage::kS5;
  int windows = 0;
  int identical_windows = 0;          // scores equal bit for bit
  int near_threshold_windows = 0;     // S1/S2: a TGAP decision within tolerance of its threshold
  int near_threshold_mismatches = 0;  // of those, how many differ (not violations)
  int violations = 0;
  double max_relative_difference = 0;  // over windows that must agree
  std::vector<std::string> messages;   // the first violations, described
  bool ok() const { return violations == 0; }
};

// Runs the engine and the trainer's export-exact forward (the file imported
// into a torch model, evaluated in double) on the centre window of every clip
// and compares them per DESIGN.md 2.6: S5 the GAP counts and the integer
// scores bit for bit; S3/S4 the GAP counts exactly and the scores within the
// relative tolerance; S1/S2 the scores within tolerance, except windows with a
// near-threshold TGAP decision, which are counted, not violations. Relative
// difference: |engine - torch| / max(1e-6, max |torch score| of the window).
StatusOr<VerifyReport> VerifyModel(const std::shared_ptr<const Model>& model,
                                   const std::vector<Clip>& clips,
                                   const VerifyOptions& options = {});

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_EVALUATE_H_
