#include "billnet/cost.h"

#include <cmath>
#include <cstdio>

namespace billnet {
namespace {

// Bits a signed integer in [-r, r] needs.
double SignedBits(double r) { return std::ceil(std::log2(r + 1)) + 1; }
// Bits an unsigned integer in [0, r] needs.
double UnsignedBits(double r) { return std::max(1.0, std::ceil(std::log2(r + 1))); }

std::string Range(double lo, double hi) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "[%.0f, %.0f]", lo, hi);
  return buf;
}

}  // namespace

CostReport ComputeCost(const TopologyPlan& plan, Stage stage) {
  CostReport r;
  r.stage = stage;
  const bool float_act = !StageHasBinaryActivations(stage);
  const int conv_wbits = StageHasBinaryWeights(stage) ? 1 : 32;

  auto add_conv = [&](const ConvSpec& c, double in_bits, double in_bits_true,
                      const std::string& range) {
    LayerCost l;
    l.name = c.name;
    l.kind = "conv";
    l.output_shape = ShapeString(c.out);
    l.params = c.weight_count();
    l.macs = c.macs();
    l.weight_bits = conv_wbits;
    l.input_bits = in_bits;
    l.input_bits_true = in_bits_true;
    l.input_range = range;
    l.bops = double(l.macs) * l.weight_bits * in_bits;
    l.bops_true_width = double(l.macs) * l.weight_bits * in_bits_true;
    r.layers.push_back(l);
  };
  auto add_norm = [&](const NormSpec& n) {
    if (stage >= Stage::kS4) return;  // BSN before a Heaviside is elided
    LayerCost l;
    l.name = n.name;
    l.kind = "norm";
    l.output_shape = ShapeString(n.at);
    l.macs = n.at.elements();
    l.input_range = float_act ? "float" : "integer";
    l.bops = l.bops_true_width = double(l.macs) * kBopsPerNormElement;
    r.layers.push_back(l);
  };
  // A CF's three convolutions. In S3+ its input is {0,1} and the values
  // inside it are integers; the paper counts all of them as 1 bit.
  auto add_cf = [&](const ConvSpec* cf) {
    if (float_act) {
      for (int i = 0; i < 3; ++i) add_conv(cf[i], 32, 32, "float");
      return;
    }
    const double ci = cf[0].ci;
    const double r1 = ci;  // pw1: sum of ci values of +-1 x {0,1}
    const double r2 = r1 * cf[1].fan_in();
    add_conv(cf[0], 1, 1, "{0,1}");
    add_conv(cf[1], 1, SignedBits(r1), Range(-r1, r1));
    add_conv(cf[2], 1, SignedBits(r2), Range(-r2, r2));
  };

  for (const auto& b : plan.blocks) {
    switch (b.kind) {
      case BlockKind::kStem:
        // 8-bit pixels count as 32 bits in the paper's figures.
        add_conv(b.convs[0], 32, float_act ? 32 : 8, float_act ? "float" : "[-255, 255]");
        add_norm(b.norms[0]);
        break;
      case BlockKind::kCf:
        add_cf(&b.convs[0]);
        add_norm(b.norms[0]);
        break;
      case BlockKind::kMor:
        add_cf(&b.convs[0]);
        add_norm(b.norms[0]);
        add_cf(&b.convs[3]);
        add_norm(b.norms[1]);
        break;
      case BlockKind::kGap:
        break;  // pooling is free
      case BlockKind::kLstm: {
        LayerCost l;
        l.name = "lstm";
        l.kind = "lstm";
        l.output_shape = ShapeString(b.out);
        const int64_t u = b.out.c, ni = b.in.c;
        l.params = 4 * u * (ni + u);
        l.macs = int64_t{b.out.t} * l.params;
        l.weight_bits = conv_wbits;
        const bool q = StageHasQuantizedLstm(stage);
        l.input_bits = q ? 1 : 32;
        // S5: x is a bit count in [0, h*w], h is ternary (2 bits).
        l.input_bits_true =
            q ? (ni * UnsignedBits(plan.gap_area) + u * 2.0) / double(ni + u) : 32;
        l.input_range = q ? "x: " + Range(0, plan.gap_area) + ", h: {-1,0,1}" : "float";
        l.bops = double(l.macs) * l.weight_bits * l.input_bits;
        l.bops_true_width = double(l.macs) * l.weight_bits * l.input_bits_true;
        r.layers.push_back(l);
        break;
      }
      case BlockKind::kDense: {
        LayerCost l;
        l.name = "dense";
        l.kind = "dense";
        l.output_shape = ShapeString(b.out);
        l.params = int64_t{b.in.c} * b.out.c;
        l.macs = int64_t{b.out.t} * l.params;
        l.weight_bits = StageHasBinaryWeights(stage) ? 2 : 32;
        const bool q = StageHasQuantizedLstm(stage);
        l.input_bits = q ? 2 : 32;  // S5: ternary h
        l.input_bits_true = l.input_bits;
        l.input_range = q ? "{-1,0,1}" : "float";
        l.bops = double(l.macs) * l.weight_bits * l.input_bits;
        l.bops_true_width = l.bops;
        r.layers.push_back(l);
        break;
      }
    }
  }
  for (const auto& l : r.layers) {
    r.params += l.params;
    r.weight_bits += l.params * l.weight_bits;
    if (l.kind != "norm") r.macs += l.macs;
    r.gbops += l.bops / 1e9;
    r.gbops_true_width += l.bops_true_width / 1e9;
  }
  r.weight_memory_mbit = double(r.weight_bits) / 1e6;
  return r;
}

}  // namespace billnet
