// The BILLNET torch model, built from the engine's TopologyPlan (the single
// description of the topology), and its export to engine model weights.
// DESIGN.md 2.1, 2.2, 2.6; docs/engine.md for the conventions.
//
// Parameter naming: every ConvSpec / NormSpec of the plan has a module here;
// `conv(spec_name)` / `norm(spec_name)` look them up by the engine's name
// ("cf1.gconv", "mor1.a.norm"); the registered torch names replace '.' by '_'.
#ifndef BILLNET_TRAINER_BILLNET_MODEL_H_
#define BILLNET_TRAINER_BILLNET_MODEL_H_

#include <torch/torch.h>

#include <array>
#include <functional>
#include <map>
#include <string>

#include "billnet/model.h"
#include "billnet/topology.h"

namespace billnet::trainer {

struct ForwardResult {
  torch::Tensor logits;  // [B, steps, classes]
  torch::Tensor h, c;    // LSTM state after the window, [B, U]
  torch::Tensor feat;    // the LSTM input per step (GAP output), [B, steps, C]; with grad
};

class BillnetModelImpl : public torch::nn::Module {
 public:
  explicit BillnetModelImpl(const TopologyPlan& plan);

  const TopologyPlan& plan() const { return plan_; }
  Stage stage() const { return stage_; }
  // Changes the forward per DESIGN table 2.1 (parameters are kept).
  void set_stage(Stage s) { stage_ = s; }

  // The S3 -> S4 offset anneal (TrainConfig::bsn_anneal_epochs). S4 drops the
  // norms' offsets (BSN: y = 2^k x), which moves every S3 threshold to 0 at
  // once (measured on billnet-2x-synth: thresholds 0.3-1 sigma from 0, most of
  // one sign per layer; S4 then fell to a constant output). In training mode
  // with lambda > 0, S4-S5 norms compute y = 2^k (x - lambda t) instead, t the
  // threshold of the S3 form (running mean - beta sigma / gamma, from the
  // norm's own S3 parameters, which BSN leaves unused: beta and the running
  // mean; gradient-free), so lambda going 1 -> 0 moves the thresholds to 0
  // gradually. Eval mode and export are always the exact BSN (lambda 0).
  void set_bsn_anneal(double lambda) { bsn_anneal_ = lambda; }
  double bsn_anneal() const { return bsn_anneal_; }

  // What a training-mode S4-S5 norm divides by (TrainConfig::bsn_scale):
  // false: the batch's standard deviation; true: its root mean square. The
  // positive scale never changes H's output, only which values land in the
  // straight-through window |y| <= 1: an offset-free input whose mean is far
  // from 0 in units of its spread has |x / sigma| > 1 almost everywhere (no
  // gradient), while |x / rms| stays about 1.
  void set_bsn_rms(bool rms) { bsn_rms_ = rms; }

  // `video`: uint8 [B, T, H, W, 3] of the plan's geometry. `h`, `c`: [B, U]
  // state from the previous window, or undefined for a zero state. The
  // returned logits are the stage's float scores; in S5 they are the engine's
  // integer scores times DenseWeightScale (1/sqrt(U)).
  ForwardResult forward(const torch::Tensor& video, torch::Tensor h = {}, torch::Tensor c = {});

  torch::nn::Conv3d& conv(const std::string& name) { return convs_.at(name); }
  torch::nn::BatchNorm3d& norm(const std::string& name) { return norms_.at(name); }
  const std::map<std::string, torch::nn::Conv3d>& convs() const { return convs_; }
  const std::map<std::string, torch::nn::BatchNorm3d>& norms() const { return norms_; }

  // When set, forward records (detached) for `verify`: "gap": the LSTM input
  // per step, [B, steps, C] (S3+: the engine's integer counts); for each MOR
  // block in S1/S2, "<block>.margin": [B], the smallest |mean - max/2| / max
  // of its TGAP decisions (how near a decision lay to its threshold).
  std::map<std::string, torch::Tensor>* trace = nullptr;
  // When set, forward adds each norm's input per channel (float64, on the
  // model's device): {count, sum, sum of squares}. See ReestimateNorms.
  std::map<std::string, std::array<torch::Tensor, 3>>* norm_inputs = nullptr;

  torch::Tensor lstm_ih, lstm_hh;  // [4U, ni], [4U, U]; gate order i, f, g, o; no bias
  torch::Tensor dense;             // [K, U]; no bias

 private:
  torch::Tensor Conv(const ConvSpec& spec, const torch::Tensor& x);
  torch::Tensor Cf(const ConvSpec* specs, const torch::Tensor& x);
  // Norm + activation. `input_scale` multiplies x first (1/255 for the stem in
  // S3+, whose convolution runs on the integer input v).
  torch::Tensor NormAct(const NormSpec& spec, const torch::Tensor& x, double input_scale);
  torch::Tensor Pool(const torch::Tensor& x);

  TopologyPlan plan_;
  Stage stage_ = Stage::kS1;
  double bsn_anneal_ = 0;
  bool bsn_rms_ = false;
  std::map<std::string, torch::nn::Conv3d> convs_;
  std::map<std::string, torch::nn::BatchNorm3d> norms_;
};
TORCH_MODULE(BillnetModel);

// The folded affine of an eval-mode BN, computed in double from its
// parameters: scale = gamma / sqrt(running_var + eps), offset = beta - mean * scale.
struct FoldedNorm {
  std::vector<double> scale, offset;
};
FoldedNorm FoldBatchNorm(const torch::nn::BatchNorm3d& bn);

// The model's parameters as the engine's weights of `stage` (see ModelWeights):
// S1 float; S2+ conv and LSTM weights Sign (+-1, Sign(0) = +1), dense Tern.
// Norms: S1-S2 folded BN; S3 FoldNormToThreshold (input_scale 1/255 for
// stem.norm, 1 elsewhere); S4-S5 shift = round(log2|scale|).
ModelWeights ExportWeights(BillnetModelImpl& model, Stage stage);
// Same, with `info` completed (stage, topology); validated by Model::FromParts.
StatusOr<std::shared_ptr<const Model>> ExportStage(BillnetModelImpl& model, Stage stage,
                                                   ModelInfo info, ModelWeights* weights = nullptr);
// Exports and writes a model file.
Status WriteStageFile(BillnetModelImpl& model, Stage stage, ModelInfo info,
                      const std::string& path);

// The inverse of ExportWeights: sets the model's parameters so that its
// eval-mode forward in `model_file`'s stage computes what the file says
// (conv, LSTM and dense values copied; S1/S2 norms as gamma = scale,
// beta = offset, mean 0, var 1; S3 thresholds as a unit-step affine whose
// decision boundary lies half a step from the threshold; S4/S5 shifts as
// gamma = 2^shift). The model's plan must equal the file's. Used by `verify`
// and to start a stage from a committed stage file.
Status ImportWeights(BillnetModelImpl& model, const Model& model_file);

// A model file holds folded norms only, so ImportWeights leaves running mean 0
// and variance 1: right in eval mode, wrong in training mode, whose batch
// statistics then normalize every layer afresh (measured: a 17% top-1 S1 file
// fell to 3.7% after one epoch of continued training). This runs `passes`
// (forwards over representative windows) in eval mode, records each norm's
// input mean and variance, and re-expresses the norms over them (running
// statistics = the recorded ones, gamma and beta such that the folded affine
// is unchanged), so training resumes from the function the file computes.
void ReestimateNorms(BillnetModelImpl& model, const std::function<void()>& passes);

// In the binary-activation stages (S3-S5) a norm feeds a Heaviside, whose
// output depends only on the sign of its input, so scaling a channel's
// (gamma, beta) by any k > 0 computes the same function; the straight-through
// gradient, though, passes only where |y| <= 1. A norm imported from an S3
// file comes back in the integer units of its threshold (|gamma| of 10-100:
// measured on billnet-2x-synth v2, the window then holds ~0% of the values
// and training cannot move). This rescales every channel to |gamma| = 1
// (beta with it), so y is the standardized distance to the threshold; in S4/S5
// (BSN: scale 2^round(log2|gamma / sigma|)) that makes the scale about
// 1 / sigma. No-op in S1/S2.
void NormalizeBinaryNormScales(BillnetModelImpl& model);

// From S2 on the forward uses only the signs of the conv and LSTM weights and
// the ternary pattern of the dense weights (Tern thresholds at 0.7 x mean |w|),
// so scaling those latent weights by alpha > 0 computes the same function. A
// stage file holds them as exactly +-1 (and 0), which Adam at the late stages'
// learning rates (5e-5..6e-4 a step) cannot flip in a session: training from
// an imported S2+ file moved nothing (measured: one S4 epoch from v2's s3 gave
// the same loss at every logged step with and without other changes). This
// scales them to +-alpha (TrainConfig::import_latent_weight), within
// alpha / lr steps of a sign flip. No-op in S1.
void ShrinkBinaryLatentWeights(BillnetModelImpl& model, double alpha);

// How far S3's thresholds lie from BSN's (TrainConfig::s3_threshold_pull):
// the mean over every norm channel of (offset / max(|gamma|, 0.1))^2, offset =
// beta - gamma mu / sigma (running statistics, no gradient) - the distance,
// in units of the batch-normalized input, between the channel's S3 decision
// boundary and x = 0, where S4's offset-free BSN puts it. Gradient to gamma
// and beta; 0 when every S3 boundary is already at x = 0.
torch::Tensor ThresholdGapPenalty(BillnetModelImpl& model);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_BILLNET_MODEL_H_
