#include "billnet/topology.h"

#include <cmath>

namespace billnet {

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kS1: return "s1";
    case Stage::kS2: return "s2";
    case Stage::kS3: return "s3";
    case Stage::kS4: return "s4";
    case Stage::kS5: return "s5";
  }
  return "?";
}

StatusOr<Stage> ParseStage(const std::string& text) {
  if (text.size() == 2 && (text[0] == 's' || text[0] == 'S') &&
      text[1] >= '1' && text[1] <= '5') {
    return static_cast<Stage>(text[1] - '0');
  }
  return InvalidArgument("unknown stage '" + text + "' (expected s1..s5)");
}

TopologyConfig Billnet2x() { return TopologyConfig{}; }

std::string ShapeString(const Shape4& s) {
  return std::to_string(s.t) + "x" + std::to_string(s.h) + "x" +
         std::to_string(s.w) + "x" + std::to_string(s.c);
}

const char* BlockKindName(BlockKind kind) {
  switch (kind) {
    case BlockKind::kStem: return "stem";
    case BlockKind::kCf: return "cf";
    case BlockKind::kMor: return "mor";
    case BlockKind::kGap: return "gap";
    case BlockKind::kLstm: return "lstm";
    case BlockKind::kDense: return "dense";
  }
  return "?";
}

const BlockSpec* TopologyPlan::Find(const std::string& name) const {
  for (const auto& b : blocks)
    if (b.name == name) return &b;
  return nullptr;
}

namespace {

int ConvOut(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

ConvSpec MakeConv(const std::string& name, const Shape4& in, int co,
                  int groups, int k3[3], int s3[3], int p3[3]) {
  ConvSpec c;
  c.name = name;
  c.ci = in.c;
  c.co = co;
  c.groups = groups;
  c.kt = k3[0], c.kh = k3[1], c.kw = k3[2];
  c.st = s3[0], c.sh = s3[1], c.sw = s3[2];
  c.pt = p3[0], c.ph = p3[1], c.pw = p3[2];
  c.in = in;
  c.out = Shape4{ConvOut(in.t, c.kt, c.st, c.pt), ConvOut(in.h, c.kh, c.sh, c.ph),
                 ConvOut(in.w, c.kw, c.sw, c.pw), co};
  return c;
}

// Appends pw1, gconv, pw2 of CF(in.c -> co) named prefix.*; returns its output.
Shape4 AddCf(const std::string& prefix, const Shape4& in, int co, int groups,
             std::vector<ConvSpec>* convs) {
  int one[3] = {1, 1, 1}, zero[3] = {0, 0, 0}, three[3] = {3, 3, 3};
  const int mid = in.c / 2;
  convs->push_back(MakeConv(prefix + "pw1", in, mid, 1, one, one, zero));
  convs->push_back(
      MakeConv(prefix + "gconv", convs->back().out, mid, groups, three, one, one));
  convs->push_back(MakeConv(prefix + "pw2", convs->back().out, co, 1, one, one, zero));
  return convs->back().out;
}

Shape4 Pooled(const Shape4& s) { return Shape4{s.t, s.h / 2, s.w / 2, s.c}; }

}  // namespace

StatusOr<TopologyPlan> BuildPlan(const TopologyConfig& cfg) {
  auto bad = [](const std::string& field, const std::string& why) {
    return InvalidArgument("topology field '" + field + "' " + why);
  };
  const int n = cfg.base_channels;
  if (n < 4 || n > 4096 || n % 4 != 0)
    return bad("base_channels", "= " + std::to_string(n) +
                                    ": must be a multiple of 4 in [4, 4096]");
  if (cfg.groups < 1 || (n / 4) % cfg.groups != 0)
    return bad("groups", "= " + std::to_string(cfg.groups) +
                             ": must divide base_channels/4 = " + std::to_string(n / 4));
  if (cfg.lstm_units < 1 || cfg.lstm_units > 8192)
    return bad("lstm_units", "= " + std::to_string(cfg.lstm_units) + ": must be in [1, 8192]");
  if (cfg.classes < 1 || cfg.classes > 4096)
    return bad("classes", "= " + std::to_string(cfg.classes) + ": must be in [1, 4096]");
  if (cfg.tail_mor_blocks < 0 || cfg.tail_mor_blocks > 16)
    return bad("tail_mor_blocks", "= " + std::to_string(cfg.tail_mor_blocks) +
                                      ": must be in [0, 16]");
  if (cfg.frames < 1 || cfg.frames > 1024)
    return bad("frames", "= " + std::to_string(cfg.frames) + ": must be in [1, 1024]");
  // Three 2x2 poolings after a stride-2 stem: at least 16 pixels each way.
  if (cfg.height < 16 || cfg.height > 4096)
    return bad("height", "= " + std::to_string(cfg.height) + ": must be in [16, 4096]");
  if (cfg.width < 16 || cfg.width > 4096)
    return bad("width", "= " + std::to_string(cfg.width) + ": must be in [16, 4096]");

  TopologyPlan plan;
  plan.config = cfg;
  const Shape4 input{cfg.frames, cfg.height, cfg.width, TopologyConfig::kChannels};

  // 0-1: stem conv 3 -> n/2, kernel 3x5x5, stride 2, pad 1x2x2; pool; norm.
  {
    BlockSpec b;
    b.kind = BlockKind::kStem;
    b.name = "stem";
    b.in = input;
    int k[3] = {3, 5, 5}, s[3] = {2, 2, 2}, p[3] = {1, 2, 2};
    b.convs.push_back(MakeConv("stem.conv", input, n / 2, 1, k, s, p));
    b.pre_pool = b.convs[0].out;
    b.pool = true;
    b.out = Pooled(b.pre_pool);
    b.norms.push_back(NormSpec{"stem.norm", b.out.c, b.out});
    plan.blocks.push_back(b);
  }
  auto add_cf = [&](const std::string& name, int co, bool pool) {
    BlockSpec b;
    b.kind = BlockKind::kCf;
    b.name = name;
    b.in = plan.blocks.back().out;
    b.pre_pool = AddCf(name + ".", b.in, co, cfg.groups, &b.convs);
    b.pool = pool;
    b.out = pool ? Pooled(b.pre_pool) : b.pre_pool;
    b.norms.push_back(NormSpec{name + ".norm", co, b.out});
    plan.blocks.push_back(b);
  };
  auto add_mor = [&](const std::string& name) {
    BlockSpec b;
    b.kind = BlockKind::kMor;
    b.name = name;
    b.in = plan.blocks.back().out;
    Shape4 a = AddCf(name + ".a.", b.in, b.in.c, cfg.groups, &b.convs);
    b.norms.push_back(NormSpec{name + ".a.norm", a.c, a});
    Shape4 o = AddCf(name + ".b.", a, b.in.c, cfg.groups, &b.convs);
    b.norms.push_back(NormSpec{name + ".b.norm", o.c, o});
    b.pre_pool = o;
    b.out = o;
    plan.blocks.push_back(b);
  };
  add_cf("cf1", n, false);
  add_mor("mor1");
  add_cf("cf2", 2 * n, true);
  add_cf("cf3", 4 * n, true);
  for (int i = 0; i < cfg.tail_mor_blocks; ++i) add_mor("mor" + std::to_string(i + 2));

  const Shape4 feat = plan.blocks.back().out;
  if (feat.t < 1 || feat.h < 1 || feat.w < 1)
    return InvalidArgument("topology: input " + std::to_string(cfg.frames) + "x" +
                           std::to_string(cfg.height) + "x" + std::to_string(cfg.width) +
                           " leaves an empty feature map " + ShapeString(feat));
  plan.steps = feat.t;
  plan.gap_channels = feat.c;
  plan.gap_area = feat.h * feat.w;
  {
    BlockSpec b;
    b.kind = BlockKind::kGap;
    b.name = "gap";
    b.in = feat;
    b.out = Shape4{feat.t, 1, 1, feat.c};
    b.pre_pool = b.out;
    plan.blocks.push_back(b);
  }
  {
    BlockSpec b;
    b.kind = BlockKind::kLstm;
    b.name = "lstm";
    b.in = Shape4{feat.t, 1, 1, feat.c};
    b.out = Shape4{feat.t, 1, 1, cfg.lstm_units};
    b.pre_pool = b.out;
    plan.blocks.push_back(b);
  }
  {
    BlockSpec b;
    b.kind = BlockKind::kDense;
    b.name = "dense";
    b.in = Shape4{feat.t, 1, 1, cfg.lstm_units};
    b.out = Shape4{feat.t, 1, 1, cfg.classes};
    b.pre_pool = b.out;
    plan.blocks.push_back(b);
  }
  return plan;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kI32: return "I32";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
  }
  return "?";
}

int DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kI32: return 4;
    case DType::kI8: return 1;
    case DType::kU8: return 1;
  }
  return 0;
}

const char* EncodingName(Encoding enc) {
  switch (enc) {
    case Encoding::kPlain: return "plain";
    case Encoding::kSign1: return "sign1";
    case Encoding::kTern2: return "tern2";
  }
  return "?";
}

int64_t TensorSpec::logical_count() const {
  int64_t n = 1;
  for (int64_t d : logical_shape) n *= d;
  return n;
}

int64_t TensorSpec::stored_bytes() const {
  int64_t n = DTypeSize(dtype);
  for (int64_t d : stored_shape) n *= d;
  return n;
}

namespace {

TensorSpec WeightSpec(const std::string& name, std::vector<int64_t> logical,
                      Encoding enc) {
  TensorSpec t;
  t.name = name;
  t.encoding = enc;
  t.logical_shape = logical;
  if (enc == Encoding::kPlain) {
    t.dtype = DType::kF32;
    t.stored_shape = logical;
  } else {
    t.dtype = DType::kU8;
    const int64_t count = t.logical_count();
    const int64_t per_byte = enc == Encoding::kSign1 ? 8 : 4;
    t.stored_shape = {(count + per_byte - 1) / per_byte};
  }
  return t;
}

TensorSpec PlainSpec(const std::string& name, DType dtype, int64_t count) {
  TensorSpec t;
  t.name = name;
  t.dtype = dtype;
  t.logical_shape = {count};
  t.stored_shape = {count};
  return t;
}

}  // namespace

std::vector<TensorSpec> ExpectedTensors(const TopologyPlan& plan, Stage stage) {
  std::vector<TensorSpec> out;
  const Encoding sign = StageHasBinaryWeights(stage) ? Encoding::kSign1 : Encoding::kPlain;
  const Encoding tern = StageHasBinaryWeights(stage) ? Encoding::kTern2 : Encoding::kPlain;
  for (const auto& b : plan.blocks) {
    size_t norm_index = 0;
    for (size_t i = 0; i < b.convs.size(); ++i) {
      const ConvSpec& c = b.convs[i];
      out.push_back(WeightSpec(c.name + ".weight",
                               {c.co, c.ci / c.groups, c.kt, c.kh, c.kw}, sign));
      // The norm follows the stem conv, each CF's pw2 (every third conv).
      const bool ends_unit = b.kind == BlockKind::kStem || (i % 3 == 2);
      if (!ends_unit) continue;
      const NormSpec& nm = b.norms[norm_index++];
      if (StageHasFloatNorm(stage)) {
        out.push_back(PlainSpec(nm.name + ".scale", DType::kF32, nm.channels));
        out.push_back(PlainSpec(nm.name + ".offset", DType::kF32, nm.channels));
      } else if (stage == Stage::kS3) {
        out.push_back(PlainSpec(nm.name + ".threshold", DType::kI32, nm.channels));
        out.push_back(PlainSpec(nm.name + ".polarity", DType::kI8, nm.channels));
      } else {
        out.push_back(PlainSpec(nm.name + ".shift", DType::kI8, nm.channels));
      }
    }
    if (b.kind == BlockKind::kLstm) {
      const int64_t u = b.out.c;
      out.push_back(WeightSpec("lstm.weight_ih", {4 * u, b.in.c}, sign));
      out.push_back(WeightSpec("lstm.weight_hh", {4 * u, u}, sign));
    } else if (b.kind == BlockKind::kDense) {
      out.push_back(WeightSpec("dense.weight", {b.out.c, b.in.c}, tern));
    }
  }
  return out;
}

double LstmWeightScale(const TopologyPlan& plan) {
  return 3.0 / std::sqrt(static_cast<double>(plan.gap_channels + plan.config.lstm_units));
}

double DenseWeightScale(const TopologyPlan& plan) {
  return 1.0 / std::sqrt(static_cast<double>(plan.config.lstm_units));
}

}  // namespace billnet
