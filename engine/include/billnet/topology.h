// The BILLNET topology: one description, used by the model loader and writer,
// the runner, the cost report and the trainer. DESIGN.md section 2.2.
//
// Activations are laid out T x H x W x C (channel last). Convolution weights
// have the logical shape [co, ci/groups, kt, kh, kw] (PyTorch's Conv3d order).
#ifndef BILLNET_TOPOLOGY_H_
#define BILLNET_TOPOLOGY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/status.h"

namespace billnet {

// Training stages of the paper (section IV). DESIGN.md table 2.1.
enum class Stage { kS1 = 1, kS2 = 2, kS3 = 3, kS4 = 4, kS5 = 5 };

const char* StageName(Stage stage);  // "s1" .. "s5"
StatusOr<Stage> ParseStage(const std::string& text);  // "s1".."s5", "S1".."S5"
inline bool StageHasBinaryWeights(Stage s) { return s >= Stage::kS2; }
inline bool StageHasBinaryActivations(Stage s) { return s >= Stage::kS3; }
inline bool StageHasFloatNorm(Stage s) { return s <= Stage::kS2; }
inline bool StageHasQuantizedLstm(Stage s) { return s == Stage::kS5; }

// The configuration the model file carries ("topology" and "input" metadata).
struct TopologyConfig {
  int base_channels = 64;  // n: CF outputs are n, 2n, 4n; the stem gives n/2
  int groups = 4;          // g of each CF's grouped 3x3x3 convolution
  int lstm_units = 128;    // 4m
  int classes = 27;
  int tail_mor_blocks = 2;  // MOR(4n) blocks after the last CF
  int frames = 16;          // input geometry: T x H x W x 3 (RGB)
  int height = 96;
  int width = 128;

  static constexpr int kChannels = 3;
  bool operator==(const TopologyConfig&) const = default;
};

// The paper's BILLNET 2x (n=64, g=4, m=32) on 16 x 96 x 128 RGB, 27 classes.
TopologyConfig Billnet2x();

struct Shape4 {
  int t = 0, h = 0, w = 0, c = 0;
  int64_t elements() const { return int64_t{t} * h * w * c; }
  int64_t positions() const { return int64_t{t} * h * w; }
  bool operator==(const Shape4&) const = default;
};
std::string ShapeString(const Shape4& s);  // "8x24x32x64"

struct ConvSpec {
  std::string name;  // "cf1.gconv"; its weight tensor is name + ".weight"
  int ci = 0, co = 0, groups = 1;
  int kt = 1, kh = 1, kw = 1;
  int st = 1, sh = 1, sw = 1;
  int pt = 0, ph = 0, pw = 0;
  Shape4 in, out;
  int64_t weight_count() const {
    return int64_t{co} * (ci / groups) * kt * kh * kw;
  }
  int64_t fan_in() const { return int64_t{ci / groups} * kt * kh * kw; }
  int64_t macs() const { return out.elements() * fan_in(); }
};

// A BN (S1-S2), folded threshold (S3) or bit-shift normalization (S4-S5),
// followed by the activation (ReLU in S1-S2, Heaviside after).
struct NormSpec {
  std::string name;  // "cf1.norm"
  int channels = 0;
  Shape4 at;  // the tensor it is applied to (after pooling)
};

// CF(ci->co) = pointwise ci->ci/2, grouped 3x3x3 ci/2->ci/2, pointwise ci/2->co,
// with no nonlinearity inside. convs[0..2] are those three.
enum class BlockKind { kStem, kCf, kMor, kGap, kLstm, kDense };
const char* BlockKindName(BlockKind kind);

struct BlockSpec {
  BlockKind kind;
  std::string name;  // "stem", "cf1", "mor1", "gap", "lstm", "dense"
  Shape4 in, out;
  // kStem: convs = {conv}, norms = {norm}; pooled.
  // kCf:   convs = {pw1, gconv, pw2}, norms = {norm}; pooled or not.
  // kMor:  convs = {a.pw1, a.gconv, a.pw2, b.pw1, b.gconv, b.pw2},
  //        norms = {a.norm, b.norm}.
  std::vector<ConvSpec> convs;
  std::vector<NormSpec> norms;
  bool pool = false;   // MaxPool 1x2x2 (stride 1x2x2, floor) after the convs
  Shape4 pre_pool;     // conv output before pooling (== out when !pool)
  // kLstm: input_size = in.c, units = out.c. kDense: in.c -> out.c.
};

struct TopologyPlan {
  TopologyConfig config;
  std::vector<BlockSpec> blocks;  // in execution order
  int steps = 0;                  // output time steps (8 for BILLNET 2x)
  int gap_channels = 0;           // LSTM input size (4n)
  int gap_area = 0;               // h * w averaged by the GAP (48)

  const BlockSpec* Find(const std::string& name) const;
};

// Checks the configuration and derives every shape. Errors name the field.
StatusOr<TopologyPlan> BuildPlan(const TopologyConfig& config);

// Tensors of a model file.
enum class DType { kF32, kI32, kI8, kU8 };
const char* DTypeName(DType dtype);  // safetensors spelling: "F32", ...
int DTypeSize(DType dtype);
// How a U8 tensor packs logical values: kSign1 = one bit per +-1 value,
// kTern2 = two bits per {-1,0,+1} value. See docs/model-format.md.
enum class Encoding { kPlain, kSign1, kTern2 };
const char* EncodingName(Encoding enc);  // "plain", "sign1", "tern2"

struct TensorSpec {
  std::string name;
  DType dtype;
  Encoding encoding = Encoding::kPlain;
  std::vector<int64_t> logical_shape;
  std::vector<int64_t> stored_shape;  // == logical unless packed: [bytes]
  int64_t logical_count() const;
  int64_t stored_bytes() const;
};

// Every tensor a file of this stage must hold, in a fixed order.
std::vector<TensorSpec> ExpectedTensors(const TopologyPlan& plan, Stage stage);

// Scale applied to binary LSTM weights in S2-S5: 3 / sqrt(ni + no) (eq. 9).
double LstmWeightScale(const TopologyPlan& plan);
// Scale applied to ternary dense weights in S2-S4: 1 / sqrt(4m) (eq. 10).
double DenseWeightScale(const TopologyPlan& plan);

}  // namespace billnet

#endif  // BILLNET_TOPOLOGY_H_
