#include "billnet/trainer/billnet_model.h"

#include <cmath>

#include "billnet/fold.h"
#include "billnet/trainer/quantizers.h"

namespace billnet::trainer {

namespace {

std::string TorchName(std::string name) {
  for (char& ch : name)
    if (ch == '.') ch = '_';
  return name;
}

// Per-channel vector as a [1, C, 1, 1, 1] tensor of x's type and device.
torch::Tensor ChannelTensor(const std::vector<double>& v, const torch::Tensor& like) {
  torch::Tensor t = torch::tensor(v, torch::kFloat64).to(like.scalar_type()).to(like.device());
  return t.view({1, int64_t(v.size()), 1, 1, 1});
}

// Forward value `q` (a detached decision), gradient of z through the STE window 1{|z| <= 1}.
torch::Tensor StepSte(const torch::Tensor& q, const torch::Tensor& z) {
  return q.detach() + (z - z.detach()) * (z.detach().abs() <= 1).to(z.scalar_type());
}

std::vector<float> ToFloats(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

BillnetModelImpl::BillnetModelImpl(const TopologyPlan& plan) : plan_(plan) {
  for (const BlockSpec& b : plan_.blocks) {
    for (const ConvSpec& c : b.convs) {
      auto opts = torch::nn::Conv3dOptions(c.ci, c.co, {c.kt, c.kh, c.kw})
                      .stride({c.st, c.sh, c.sw})
                      .padding({c.pt, c.ph, c.pw})
                      .groups(c.groups)
                      .bias(false);
      convs_.emplace(c.name, register_module(TorchName(c.name), torch::nn::Conv3d(opts)));
    }
    for (const NormSpec& n : b.norms)
      norms_.emplace(n.name,
                     register_module(TorchName(n.name), torch::nn::BatchNorm3d(n.channels)));
  }
  const int64_t u = plan_.config.lstm_units, ni = plan_.gap_channels, k = plan_.config.classes;
  const double r = 1.0 / std::sqrt(double(u));
  lstm_ih = register_parameter("lstm_weight_ih", torch::empty({4 * u, ni}).uniform_(-r, r));
  lstm_hh = register_parameter("lstm_weight_hh", torch::empty({4 * u, u}).uniform_(-r, r));
  dense = register_parameter("dense_weight", torch::empty({k, u}).uniform_(-r, r));
}

torch::Tensor BillnetModelImpl::Conv(const ConvSpec& spec, const torch::Tensor& x) {
  const torch::Tensor& w0 = convs_.at(spec.name)->weight;
  const torch::Tensor w = StageHasBinaryWeights(stage_) ? SignSte(w0) : w0;
  return torch::conv3d(x, w, {}, {spec.st, spec.sh, spec.sw}, {spec.pt, spec.ph, spec.pw},
                       {1, 1, 1}, spec.groups);
}

torch::Tensor BillnetModelImpl::Cf(const ConvSpec* specs, const torch::Tensor& x) {
  return Conv(specs[2], Conv(specs[1], Conv(specs[0], x)));
}

torch::Tensor BillnetModelImpl::Pool(const torch::Tensor& x) {
  return torch::max_pool3d(x, {1, 2, 2}, {1, 2, 2});
}

torch::Tensor BillnetModelImpl::NormAct(const NormSpec& spec, const torch::Tensor& x0,
                                        double input_scale) {
  torch::nn::BatchNorm3d& bn = norms_.at(spec.name);
  const torch::Tensor x = input_scale == 1.0 ? x0 : x0 * input_scale;
  if (norm_inputs) {
    torch::NoGradGuard ng;
    const torch::Tensor d = x.detach().to(torch::kFloat64);
    auto& acc = (*norm_inputs)[spec.name];
    const torch::Tensor n = torch::full({x.size(1)}, double(x.numel() / x.size(1)), d.options());
    const torch::Tensor sum = d.sum({0, 2, 3, 4}), sq = (d * d).sum({0, 2, 3, 4});
    if (!acc[0].defined()) {
      acc = {n, sum, sq};
    } else {
      acc[0] += n;
      acc[1] += sum;
      acc[2] += sq;
    }
  }
  const double eps = bn->options.eps();
  const double momentum = bn->options.momentum().value_or(0.1);
  torch::Tensor y;
  if (stage_ <= Stage::kS3) {
    if (is_training()) {
      y = torch::batch_norm(x, bn->weight, bn->bias, bn->running_mean, bn->running_var, true,
                            momentum, eps, false);
    } else {
      // Exactly the exported fold (computed in double), so S3's thresholds agree.
      const FoldedNorm f = FoldBatchNorm(bn);
      y = x * ChannelTensor(f.scale, x) + ChannelTensor(f.offset, x);
    }
  } else {
    // BSN: a power-of-two scale from gamma / sqrt(var + eps); no offset.
    // During the S4 anneal, t = the S3 form's threshold, taken before this
    // batch updates the running variance.
    torch::Tensor t;
    if (is_training() && bsn_anneal_ > 0) {
      torch::NoGradGuard ng;
      t = bn->running_mean -
          bn->bias.detach() * torch::sqrt(bn->running_var + eps) / bn->weight.detach();
    }
    torch::Tensor var;
    if (is_training()) {
      torch::NoGradGuard ng;
      var = bsn_rms_ ? x.detach().square().mean({0, 2, 3, 4})
                     : x.detach().var({0, 2, 3, 4}, /*unbiased=*/false);
      const int64_t n = x.numel() / x.size(1);
      bn->running_var.mul_(1 - momentum).add_(var * (momentum * n / std::max<int64_t>(n - 1, 1)));
    } else {
      var = bn->running_var;
    }
    torch::Tensor scale = BsnScale(bn->weight.detach() / torch::sqrt(var + eps));
    y = x * scale.to(x.scalar_type()).view({1, -1, 1, 1, 1});
    if (t.defined()) {  // y = 2^k (x - lambda t) (see set_bsn_anneal)
      const torch::Tensor shift = (scale * t * bsn_anneal_).to(x.scalar_type());
      y = y - shift.view({1, -1, 1, 1, 1});
    }
  }
  return StageHasBinaryActivations(stage_) ? HeavisideSte(y) : torch::relu(y);
}

ForwardResult BillnetModelImpl::forward(const torch::Tensor& video, torch::Tensor h,
                                        torch::Tensor c) {
  const auto dtype = lstm_ih.scalar_type();
  const auto device = lstm_ih.device();
  const bool bin = StageHasBinaryActivations(stage_);
  TORCH_CHECK(video.dim() == 5 && video.size(1) == plan_.config.frames &&
                  video.size(2) == plan_.config.height && video.size(3) == plan_.config.width &&
                  video.size(4) == 3,
              "BillnetModel: video must be [B, T, H, W, 3] of the plan's geometry");
  const int64_t batch = video.size(0);
  // v = 2x - 255 (exact integers); float stages use v / 255.
  torch::Tensor v =
      video.to(device).to(dtype).mul(2).sub(255).permute({0, 4, 1, 2, 3}).contiguous();
  torch::Tensor x = bin ? v : v / 255.0;
  torch::Tensor feat, count;
  for (const BlockSpec& b : plan_.blocks) {
    switch (b.kind) {
      case BlockKind::kStem: {
        torch::Tensor y = Conv(b.convs[0], x);
        if (b.pool) y = Pool(y);
        x = NormAct(b.norms[0], y, bin ? 1.0 / 255.0 : 1.0);
        break;
      }
      case BlockKind::kCf: {
        torch::Tensor y = Cf(&b.convs[0], x);
        if (b.pool) y = Pool(y);
        x = NormAct(b.norms[0], y, 1.0);
        break;
      }
      case BlockKind::kMor: {
        torch::Tensor a = NormAct(b.norms[0], Cf(&b.convs[0], x), 1.0);
        torch::Tensor i1 = NormAct(b.norms[1], Cf(&b.convs[3], a), 1.0);
        torch::Tensor sel;
        {
          torch::NoGradGuard ng;
          const torch::Tensor xd = x.detach();
          if (bin) {
            sel = xd.sum({3, 4}) * 2 > double(b.in.h * b.in.w);  // [B, C, T]
          } else {
            torch::Tensor ap = xd.mean({3, 4});
            torch::Tensor m = ap.amax({1, 2}, /*keepdim=*/true);  // per clip
            sel = ap > m * 0.5;
            if (trace)
              (*trace)[b.name + ".margin"] =
                  ((ap - m * 0.5).abs() / m.clamp_min(1e-30)).amin({1, 2});
          }
        }
        sel = sel.unsqueeze(-1).unsqueeze(-1);
        x = torch::where(sel, i1, ClipSte(x + i1));
        break;
      }
      case BlockKind::kGap:
        feat = x.mean({3, 4}).permute({0, 2, 1});  // [B, T, C]
        if (stage_ == Stage::kS5) count = x.detach().sum({3, 4}).permute({0, 2, 1});
        if (trace)
          (*trace)["gap"] = bin ? x.detach().sum({3, 4}).permute({0, 2, 1}) : feat.detach();
        break;
      case BlockKind::kLstm:
      case BlockKind::kDense:
        break;
    }
  }
  const int64_t u = plan_.config.lstm_units;
  if (!h.defined())
    h = torch::zeros({batch, u}, torch::TensorOptions().dtype(dtype).device(device));
  if (!c.defined())
    c = torch::zeros({batch, u}, torch::TensorOptions().dtype(dtype).device(device));
  const double ls = LstmWeightScale(plan_), ds = DenseWeightScale(plan_);
  const bool qw = StageHasBinaryWeights(stage_);
  const torch::Tensor wih = qw ? SSign(lstm_ih, ls) : lstm_ih;
  const torch::Tensor whh = qw ? SSign(lstm_hh, ls) : lstm_hh;
  const torch::Tensor wd = qw ? STern(dense, ds) : dense;
  torch::Tensor sih, shh;
  if (stage_ == Stage::kS5) {
    sih = SignValues(lstm_ih.detach()).t();
    shh = SignValues(lstm_hh.detach()).t();
  }
  std::vector<torch::Tensor> logits;
  for (int t = 0; t < plan_.steps; ++t) {
    const torch::Tensor xt = feat.select(1, t);
    const torch::Tensor z = xt.matmul(wih.t()) + h.matmul(whh.t());
    auto zs = z.chunk(4, 1);
    if (stage_ == Stage::kS5) {
      // The integer pre-activation (the float one times area / scale), exact.
      const torch::Tensor ze =
          count.select(1, t).matmul(sih) + double(plan_.gap_area) * h.detach().matmul(shh);
      auto es = ze.chunk(4, 1);
      const torch::Tensor i = StepSte((es[0] > 0).to(dtype), zs[0]);
      const torch::Tensor f = StepSte((es[1] > 0).to(dtype), zs[1]);
      const torch::Tensor g = StepSte(SignValues(es[2]), zs[2]);
      const torch::Tensor o = StepSte((es[3] > 0).to(dtype), zs[3]);
      c = ClipSte(f * c + i * g);
      h = o * c;
    } else {
      const torch::Tensor i = torch::sigmoid(zs[0]), f = torch::sigmoid(zs[1]);
      const torch::Tensor g = torch::tanh(zs[2]), o = torch::sigmoid(zs[3]);
      c = f * c + i * g;
      h = o * torch::tanh(c);
    }
    logits.push_back(h.matmul(wd.t()));
  }
  return ForwardResult{torch::stack(logits, 1), h, c, feat};
}

FoldedNorm FoldBatchNorm(const torch::nn::BatchNorm3d& bn) {
  auto vec = [](const torch::Tensor& t) {
    torch::Tensor d = t.detach().to(torch::kCPU).to(torch::kFloat64).contiguous();
    return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  };
  const std::vector<double> g = vec(bn->weight), b = vec(bn->bias), m = vec(bn->running_mean),
                            v = vec(bn->running_var);
  const double eps = bn->options.eps();
  FoldedNorm f;
  for (size_t i = 0; i < g.size(); ++i) {
    const double s = g[i] / std::sqrt(v[i] + eps);
    f.scale.push_back(s);
    f.offset.push_back(b[i] - m[i] * s);
  }
  return f;
}

void ReestimateNorms(BillnetModelImpl& model, const std::function<void()>& passes) {
  std::map<std::string, std::array<torch::Tensor, 3>> stats;
  const bool was_training = model.is_training();
  model.eval();
  model.norm_inputs = &stats;
  try {
    passes();
  } catch (...) {
    model.norm_inputs = nullptr;
    throw;
  }
  model.norm_inputs = nullptr;
  model.train(was_training);
  torch::NoGradGuard ng;
  for (auto& [name, bn] : model.norms()) {
    auto it = stats.find(name);
    if (it == stats.end()) continue;
    const torch::Tensor n = it->second[0].cpu(), mean = it->second[1].cpu() / n;
    const torch::Tensor var = (it->second[2].cpu() / n - mean * mean).clamp_min(0);
    const FoldedNorm f = FoldBatchNorm(bn);
    const double eps = bn->options.eps();
    const int64_t channels = bn->weight.numel();
    std::vector<float> gamma(channels), beta(channels), rm(channels), rv(channels);
    for (int64_t c = 0; c < channels; ++c) {
      const double m = mean[c].item<double>(), v = var[c].item<double>();
      gamma[c] = float(f.scale[c] * std::sqrt(v + eps));
      beta[c] = float(f.offset[c] + f.scale[c] * m);
      rm[c] = float(m);
      rv[c] = float(v);
    }
    auto put = [](torch::Tensor& dst, const std::vector<float>& v) {
      dst.copy_(torch::tensor(v).to(dst.device(), dst.scalar_type()));
    };
    torch::nn::BatchNorm3d bn_mut = bn;
    put(bn_mut->weight, gamma);
    put(bn_mut->bias, beta);
    put(bn_mut->running_mean, rm);
    put(bn_mut->running_var, rv);
  }
}

void NormalizeBinaryNormScales(BillnetModelImpl& model) {
  if (!StageHasBinaryActivations(model.stage())) return;
  torch::NoGradGuard ng;
  for (auto& [name, bn] : model.norms()) {
    torch::nn::BatchNorm3d b = bn;
    const torch::Tensor g = b->weight.detach();
    const torch::Tensor k =
        torch::where(g.abs() > 0, 1.0 / g.abs().clamp_min(1e-30), torch::ones_like(g));
    b->weight.mul_(k);
    b->bias.mul_(k);
  }
}

void ShrinkBinaryLatentWeights(BillnetModelImpl& model, double alpha) {
  if (!StageHasBinaryWeights(model.stage()) || !(alpha > 0)) return;
  torch::NoGradGuard ng;
  for (auto& [name, conv] : model.convs()) {
    torch::nn::Conv3d c = conv;
    c->weight.mul_(alpha);
  }
  model.lstm_ih.mul_(alpha);
  model.lstm_hh.mul_(alpha);
  model.dense.mul_(alpha);
}

torch::Tensor ThresholdGapPenalty(BillnetModelImpl& model) {
  torch::Tensor sum;
  int64_t n = 0;
  for (auto& [name, bn] : model.norms()) {
    const double eps = bn->options.eps();
    const torch::Tensor mu_over_sigma =
        (bn->running_mean / torch::sqrt(bn->running_var + eps)).detach();
    const torch::Tensor offset = bn->bias - bn->weight * mu_over_sigma;
    const torch::Tensor gap = offset / bn->weight.abs().clamp_min(0.1);
    const torch::Tensor s = (gap * gap).sum();
    sum = sum.defined() ? sum + s : s;
    n += gap.numel();
  }
  return n > 0 ? sum / double(n) : torch::zeros({});
}

ModelWeights ExportWeights(BillnetModelImpl& model, Stage stage) {
  torch::NoGradGuard ng;
  const bool qw = StageHasBinaryWeights(stage);
  ModelWeights w;
  for (const BlockSpec& b : model.plan().blocks) {
    for (const ConvSpec& c : b.convs) {
      const torch::Tensor& t = model.conv(c.name)->weight;
      w.conv[c.name] = ToFloats(qw ? SignValues(t.detach()) : t);
    }
    for (const NormSpec& n : b.norms) {
      const FoldedNorm f = FoldBatchNorm(model.norm(n.name));
      NormParams p;
      for (int ch = 0; ch < n.channels; ++ch) {
        if (StageHasFloatNorm(stage)) {
          p.scale.push_back(float(f.scale[ch]));
          p.offset.push_back(float(f.offset[ch]));
        } else if (stage == Stage::kS3) {
          const double is = b.kind == BlockKind::kStem ? 1.0 / 255.0 : 1.0;
          const FoldedThreshold ft = FoldNormToThreshold(f.scale[ch], f.offset[ch], is);
          p.threshold.push_back(ft.threshold);
          p.polarity.push_back(ft.polarity);
        } else {
          p.shift.push_back(int8_t(BsnShift(f.scale[ch])));
        }
      }
      w.norm[n.name] = std::move(p);
    }
  }
  w.lstm_ih = ToFloats(qw ? SignValues(model.lstm_ih.detach()) : model.lstm_ih);
  w.lstm_hh = ToFloats(qw ? SignValues(model.lstm_hh.detach()) : model.lstm_hh);
  w.dense = ToFloats(qw ? TernValues(model.dense.detach()) : model.dense);
  return w;
}

namespace {
void CompleteInfo(const BillnetModelImpl& model, Stage stage, ModelInfo* info) {
  info->stage = stage;
  info->topology = model.plan().config;
  if (info->labels.empty()) {
    if (info->topology == Billnet2x() || info->topology.classes == int(JesterLabels().size()))
      info->labels = JesterLabels();
    else
      for (int i = 0; i < info->topology.classes; ++i)
        info->labels.push_back("class" + std::to_string(i));
  }
}
}  // namespace

StatusOr<std::shared_ptr<const Model>> ExportStage(BillnetModelImpl& model, Stage stage,
                                                   ModelInfo info, ModelWeights* weights) {
  CompleteInfo(model, stage, &info);
  ModelWeights w = ExportWeights(model, stage);
  if (weights) *weights = w;
  return Model::FromParts(std::move(info), std::move(w));
}

Status ImportWeights(BillnetModelImpl& model, const Model& file) {
  if (!(file.info().topology == model.plan().config))
    return InvalidArgument("ImportWeights: the model file's topology differs from the model's");
  const ModelWeights& w = file.weights();
  const Stage stage = file.info().stage;
  torch::NoGradGuard ng;
  auto assign = [](torch::Tensor& dst, const std::vector<float>& v, const std::string& what) {
    if (int64_t(v.size()) != dst.numel())
      return InvalidArgument("ImportWeights: '" + what + "' has " + std::to_string(v.size()) +
                             " values, the model " + std::to_string(dst.numel()));
    dst.copy_(torch::tensor(v, torch::kFloat32).view(dst.sizes()).to(dst.dtype()));
    return Status::Ok();
  };
  try {
    for (const BlockSpec& b : model.plan().blocks) {
      for (const ConvSpec& c : b.convs) {
        auto it = w.conv.find(c.name);
        if (it == w.conv.end()) return InvalidArgument("ImportWeights: no conv '" + c.name + "'");
        BILLNET_RETURN_IF_ERROR(assign(model.conv(c.name)->weight, it->second, c.name));
      }
      for (const NormSpec& n : b.norms) {
        auto it = w.norm.find(n.name);
        if (it == w.norm.end()) return InvalidArgument("ImportWeights: no norm '" + n.name + "'");
        const NormParams& p = it->second;
        torch::nn::BatchNorm3d& bn = model.norm(n.name);
        const double eps = bn->options.eps();
        std::vector<float> gamma(n.channels), beta(n.channels, 0.f);
        for (int ch = 0; ch < n.channels; ++ch) {
          if (StageHasFloatNorm(stage)) {
            gamma[ch] = p.scale.at(ch);
            beta[ch] = p.offset.at(ch);
          } else if (stage == Stage::kS3) {
            // bit = x >= t  <=>  x - (t - 0.5) > 0 for integer x; the stem's
            // float input is x / 255, so its unit step is 255.
            const double step = b.kind == BlockKind::kStem ? 255.0 : 1.0;
            const double t = p.threshold.at(ch);
            const int pol = p.polarity.at(ch);
            if (pol > 0) {
              gamma[ch] = float(step);
              beta[ch] = float(-(t - 0.5));
            } else if (pol < 0) {
              gamma[ch] = float(-step);
              beta[ch] = float(t + 0.5);
            } else {
              gamma[ch] = 0.f;
              beta[ch] = t != 0 ? 0.5f : -0.5f;
            }
          } else {
            gamma[ch] = float(std::ldexp(1.0, p.shift.at(ch)));
          }
        }
        bn->weight.copy_(torch::tensor(gamma));
        bn->bias.copy_(torch::tensor(beta));
        bn->running_mean.zero_();
        bn->running_var.fill_(1.0 - eps);
      }
    }
    BILLNET_RETURN_IF_ERROR(assign(model.lstm_ih, w.lstm_ih, "lstm.ih"));
    BILLNET_RETURN_IF_ERROR(assign(model.lstm_hh, w.lstm_hh, "lstm.hh"));
    BILLNET_RETURN_IF_ERROR(assign(model.dense, w.dense, "dense"));
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("ImportWeights: ") + e.what());
  }
  model.set_stage(stage);
  return Status::Ok();
}

Status WriteStageFile(BillnetModelImpl& model, Stage stage, ModelInfo info,
                      const std::string& path) {
  CompleteInfo(model, stage, &info);
  return WriteModelFile(info, ExportWeights(model, stage), path);
}

}  // namespace billnet::trainer
