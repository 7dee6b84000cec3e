#include "billnet/trainer/evaluate.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>

#include "billnet/session.h"
#include "billnet/trainer/data.h"
#include "parallel.h"

namespace billnet::trainer {

namespace {

struct CentreWindow {
  std::vector<uint8_t> rgb;
  int real_frames = 0;
};

CentreWindow Centre(const Clip& clip, int frames) {
  Window w = CutWindow(clip, CentreStart(clip, frames), frames, 1, 0, 0);
  return {std::move(w.rgb), w.real_frames};
}

// Accumulates clip results into an EvalResult (probabilities given per step).
class Scorer {
 public:
  Scorer(size_t clips, int steps, int classes) : steps_(steps), classes_(classes) {
    r_.logits.resize(clips);
    r_.real_steps.resize(clips);
    r_.predicted.resize(clips);
    r_.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  }

  // `scores` steps x classes raw; `probs` the same shape, softmaxed.
  void Add(size_t i, int label, std::vector<double> scores, const std::vector<double>& probs,
           int real_steps) {
    std::vector<double> mean(classes_, 0.0);
    for (int s = 0; s < real_steps; ++s) {
      for (int k = 0; k < classes_; ++k) mean[k] += probs[s * classes_ + k] / real_steps;
      loss_ += -std::log(std::max(probs[s * classes_ + label], 1e-300));
      ++loss_n_;
    }
    int best = 0;
    for (int k = 1; k < classes_; ++k)
      if (mean[k] > mean[best]) best = k;
    int higher = 0;
    for (int k = 0; k < classes_; ++k)
      if (mean[k] > mean[label] || (mean[k] == mean[label] && k < label)) ++higher;
    top1_ += best == label;
    top5_ += higher < 5;
    r_.logits[i] = std::move(scores);
    r_.real_steps[i] = real_steps;
    r_.predicted[i] = best;
    ++r_.confusion[label][best];
  }

  EvalResult Finish(size_t clips) {
    r_.loss = loss_n_ ? loss_ / loss_n_ : 0;
    r_.top1 = clips ? double(top1_) / clips : 0;
    r_.top5 = clips ? double(top5_) / clips : 0;
    return std::move(r_);
  }

 private:
  int steps_, classes_;
  EvalResult r_;
  double loss_ = 0;
  int64_t loss_n_ = 0, top1_ = 0, top5_ = 0;
};

torch::Tensor VideoBatch(const std::vector<CentreWindow>& ws, const TopologyConfig& t) {
  const size_t bytes = size_t(t.frames) * t.height * t.width * 3;
  torch::Tensor v =
      torch::empty({int64_t(ws.size()), t.frames, t.height, t.width, 3}, torch::kUInt8);
  for (size_t i = 0; i < ws.size(); ++i)
    std::memcpy(v.data_ptr<uint8_t>() + i * bytes, ws[i].rgb.data(), bytes);
  return v;
}

}  // namespace

EvalResult EvaluateTorch(BillnetModelImpl& model, const std::vector<Clip>& clips, int batch) {
  const TopologyPlan& plan = model.plan();
  const int steps = plan.steps, k = plan.config.classes, frames = plan.config.frames;
  torch::NoGradGuard ng;
  model.eval();
  Scorer scorer(clips.size(), steps, k);
  batch = std::max(1, batch);
  for (size_t i0 = 0; i0 < clips.size(); i0 += batch) {
    std::vector<CentreWindow> ws;
    for (size_t i = i0; i < std::min(clips.size(), i0 + batch); ++i)
      ws.push_back(Centre(clips[i], frames));
    torch::Tensor logits =
        model.forward(VideoBatch(ws, plan.config)).logits.to(torch::kCPU).to(torch::kFloat64);
    torch::Tensor probs = torch::softmax(logits, 2).contiguous();
    logits = logits.contiguous();
    for (size_t j = 0; j < ws.size(); ++j) {
      const double* lp = logits[j].data_ptr<double>();
      const double* pp = probs[j].data_ptr<double>();
      scorer.Add(i0 + j, clips[i0 + j].label, std::vector<double>(lp, lp + steps * k),
                 std::vector<double>(pp, pp + steps * k),
                 RealSteps(steps, frames, ws[j].real_frames));
    }
  }
  return scorer.Finish(clips.size());
}

StatusOr<EvalResult> EvaluateEngine(const std::shared_ptr<const Model>& model,
                                    const std::vector<Clip>& clips, int threads) {
  const TopologyConfig& t = model->info().topology;
  BILLNET_ASSIGN_OR_RETURN(TopologyPlan plan, BuildPlan(t));
  for (const Clip& c : clips) {
    if (c.height != t.height || c.width != t.width)
      return InvalidArgument("clip '" + c.id + "' is " + std::to_string(c.width) + "x" +
                             std::to_string(c.height) + ", the model needs " +
                             std::to_string(t.width) + "x" + std::to_string(t.height));
    if (c.label < 0 || c.label >= t.classes)
      return InvalidArgument("clip '" + c.id + "' has no label among the model's classes");
  }
  std::vector<Response> responses(clips.size());
  std::vector<int> real(clips.size());
  std::vector<Status> errors(clips.size());
  ParallelFor(int(clips.size()), threads, [&](int i) {
    CentreWindow w = Centre(clips[i], t.frames);
    real[i] = w.real_frames;
    Session session(model);
    errors[i] = session.Run(w.rgb.data(), w.rgb.size(), &responses[i]);
  });
  for (const Status& s : errors) BILLNET_RETURN_IF_ERROR(s);
  Scorer scorer(clips.size(), plan.steps, t.classes);
  for (size_t i = 0; i < clips.size(); ++i) {
    const Response& r = responses[i];
    scorer.Add(i, clips[i].label, std::vector<double>(r.scores.begin(), r.scores.end()),
               std::vector<double>(r.probabilities.begin(), r.probabilities.end()),
               RealSteps(plan.steps, t.frames, real[i]));
  }
  return scorer.Finish(clips.size());
}

StatusOr<VerifyReport> VerifyModel(const std::shared_ptr<const Model>& model,
                                   const std::vector<Clip>& clips, const VerifyOptions& opt) {
  const ModelInfo& info = model->info();
  BILLNET_ASSIGN_OR_RETURN(TopologyPlan plan, BuildPlan(info.topology));
  const int frames = plan.config.frames, steps = plan.steps, k = plan.config.classes;
  for (const Clip& c : clips)
    if (c.height != plan.config.height || c.width != plan.config.width)
      return InvalidArgument("clip '" + c.id + "' does not have the model's geometry");
  VerifyReport rep;
  rep.stage = info.stage;
  const Stage stage = info.stage;

  // The engine, with traces.
  std::vector<Response> responses(clips.size());
  std::vector<std::vector<TracedTensor>> traces(clips.size());
  std::vector<Status> errors(clips.size());
  std::vector<CentreWindow> windows(clips.size());
  for (size_t i = 0; i < clips.size(); ++i) windows[i] = Centre(clips[i], frames);
  ParallelFor(int(clips.size()), opt.threads, [&](int i) {
    Session session(model);
    errors[i] =
        session.Run(windows[i].rgb.data(), windows[i].rgb.size(), &responses[i], &traces[i]);
  });
  for (const Status& s : errors) BILLNET_RETURN_IF_ERROR(s);

  // The trainer's export-exact forward, in double.
  try {
    torch::NoGradGuard ng;
    BillnetModel tm(plan);
    BILLNET_RETURN_IF_ERROR(ImportWeights(*tm, *model));
    tm->to(torch::kFloat64);
    tm->eval();
    const double to_engine = stage == Stage::kS5 ? 1.0 / DenseWeightScale(plan) : 1.0;
    for (size_t i = 0; i < clips.size(); ++i) {
      std::map<std::string, torch::Tensor> trace;
      tm->trace = &trace;
      torch::Tensor logits =
          tm->forward(VideoBatch({windows[i]}, plan.config)).logits[0].contiguous();
      tm->trace = nullptr;
      const double* lp = logits.data_ptr<double>();
      const Response& r = responses[i];
      ++rep.windows;
      bool near = false;
      if (!StageHasBinaryActivations(stage))
        for (auto& [name, t] : trace)
          if (name.size() > 7 && name.substr(name.size() - 7) == ".margin" &&
              t[0].item<double>() <= opt.relative_tolerance)
            near = true;
      std::string problem;
      // GAP (the LSTM input) must be identical in the integer stages.
      if (StageHasBinaryActivations(stage)) {
        const TracedTensor* gap = nullptr;
        for (const TracedTensor& t : traces[i])
          if (t.name == "gap") gap = &t;
        torch::Tensor tg = trace.at("gap")[0].contiguous();
        if (!gap || int64_t(gap->ints.size()) != tg.numel()) {
          problem = "GAP shapes differ";
        } else {
          const double* g = tg.data_ptr<double>();
          for (size_t j = 0; j < gap->ints.size(); ++j)
            if (double(gap->ints[j]) != g[j]) {
              problem = "GAP count " + std::to_string(j) + ": engine " +
                        std::to_string(gap->ints[j]) + ", trainer " + std::to_string(g[j]);
              break;
            }
        }
      }
      double scale = 1e-6, max_diff = 0;
      bool identical = true;
      for (int j = 0; j < steps * k; ++j) scale = std::max(scale, std::abs(lp[j] * to_engine));
      for (int j = 0; j < steps * k; ++j) {
        double want = lp[j] * to_engine;
        // S5: the trainer's logits are integers times the dense scale.
        if (stage == Stage::kS5 && std::abs(want - std::round(want)) < 1e-6)
          want = std::round(want);
        const double got = stage == Stage::kS5 ? double(r.integer_scores.at(j)) : r.scores[j];
        if (got != want) identical = false;
        max_diff = std::max(max_diff, std::abs(got - want) / scale);
      }
      if (stage == Stage::kS5 && !identical && problem.empty())
        problem = "integer scores differ (max relative " + std::to_string(max_diff) + ")";
      if (stage != Stage::kS5 && max_diff > opt.relative_tolerance && problem.empty())
        problem = "scores differ by " + std::to_string(max_diff) + " relative";
      rep.identical_windows += identical;
      if (near) {
        ++rep.near_threshold_windows;
        rep.near_threshold_mismatches += !problem.empty();
        continue;
      }
      rep.max_relative_difference = std::max(rep.max_relative_difference, max_diff);
      if (!problem.empty()) {
        ++rep.violations;
        if (int(rep.messages.size()) < opt.max_reported)
          rep.messages.push_back("clip '" + clips[i].id + "': " + problem);
      }
    }
  } catch (const std::exception& e) {
    return Internal(std::string("verify: trainer forward: ") + e.what());
  }
  return rep;
}

}  // namespace billnet::trainer
