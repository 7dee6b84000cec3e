// A BILLNET model of one stage: what a model file holds, loaded, validated
// and then immutable. DESIGN.md section 2.4; the file format is described in
// docs/model-format.md.
//
// Thread-safety: a loaded Model is immutable; share it (std::shared_ptr<const
// Model>) between any number of sessions and threads.
#ifndef BILLNET_MODEL_H_
#define BILLNET_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "billnet/status.h"
#include "billnet/topology.h"

namespace billnet {

inline constexpr int kFormatVersion = 1;
// Input normalization: an 8-bit channel value x becomes v = 2x - 255; float
// stages use v / 255; convolution padding is 0 in that domain.
inline constexpr const char* kNormalization = "2x-255";

// The metadata of a model file, parsed.
struct ModelInfo {
  std::string name;  // "billnet2x"; may be empty
  Stage stage = Stage::kS5;
  TopologyConfig topology;
  std::vector<std::string> labels;  // one per class
  double frame_rate = 6.0;          // frames per second the model sees
  double temperature = 1.0;         // probabilities = softmax(scores / T)
  std::string provenance = "{}";    // JSON object: training data, seed, ...
  std::string checksum;             // "sha256:<hex>" of the tensor bytes (set on load)
};

// Normalization parameters of one norm (see NormSpec), by stage:
//   S1-S2: scale, offset (BN folded: y = scale * x + offset), then ReLU.
//   S3:    threshold, polarity: bit = polarity > 0 ? x >= threshold
//                                   : polarity < 0 ? x <= threshold
//                                   : threshold (a constant 0 or 1).
//   S4-S5: shift: the BSN scale 2^shift (positive, so it does not change H and
//          inference ignores it); bit = x > 0.
struct NormParams {
  std::vector<float> scale, offset;
  std::vector<int32_t> threshold;
  std::vector<int8_t> polarity;
  std::vector<int8_t> shift;
};

// All weights in logical form. Convolutions: [co][ci/g][kt][kh][kw] row-major.
// In S2-S5 binary weights are +-1 and ternary ones -1/0/+1 (unscaled: the
// stage's scale factors are implied by the topology).
struct ModelWeights {
  std::map<std::string, std::vector<float>> conv;  // by ConvSpec::name
  std::map<std::string, NormParams> norm;          // by NormSpec::name
  std::vector<float> lstm_ih;  // [4U][ni], gate order i, f, g (candidate), o
  std::vector<float> lstm_hh;  // [4U][U]
  std::vector<float> dense;    // [K][U]
};

class Model {
 public:
  // Reads, validates and prepares a model file. Every malformed input is a
  // non-OK Status naming the field; nothing is ever partly loaded.
  static StatusOr<std::shared_ptr<const Model>> LoadFile(const std::string& path);
  // Same from memory; `name` is used in messages.
  static StatusOr<std::shared_ptr<const Model>> LoadBuffer(const uint8_t* data, size_t size,
                                                           const std::string& name);
  // Builds a model from parts (validated the same way as a file).
  static StatusOr<std::shared_ptr<const Model>> FromParts(ModelInfo info, ModelWeights weights);

  const ModelInfo& info() const { return info_; }
  Stage stage() const { return info_.stage; }
  const TopologyPlan& plan() const { return plan_; }
  const ModelWeights& weights() const { return weights_; }
  // Bytes of one input window: frames x height x width x 3.
  size_t window_bytes() const;

  // Engine-internal prepared form (kernel layouts); opaque outside the engine.
  struct Prepared;
  const Prepared& prepared() const { return *prepared_; }

  ~Model();

 private:
  Model();
  ModelInfo info_;
  TopologyPlan plan_;
  ModelWeights weights_;
  std::unique_ptr<Prepared> prepared_;
};

// Serializes a model to the file format (validating it first).
StatusOr<std::string> SerializeModel(const ModelInfo& info, const ModelWeights& weights);
Status WriteModelFile(const ModelInfo& info, const ModelWeights& weights,
                      const std::string& path);

// Checks that weights match the plan and stage: every tensor present with the
// right size, binary values +-1, ternary -1/0/+1, finite floats, valid
// polarities. Errors name the tensor.
Status ValidateWeights(const TopologyPlan& plan, Stage stage, const ModelWeights& weights);

// Labels of the 27 Jester V1 classes, in the dataset's usual order.
const std::vector<std::string>& JesterLabels();

// Random weights of the given stage (seeded, deterministic), with thresholds
// chosen so activations are neither all 0 nor all 1: for tests and benchmarks.
ModelWeights RandomWeights(const TopologyPlan& plan, Stage stage, uint64_t seed);

}  // namespace billnet

#endif  // BILLNET_MODEL_H_
