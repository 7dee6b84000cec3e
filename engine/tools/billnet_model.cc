// billnet-model: inspect, create and run BILLNET model files.
//   info FILE [--json]        topology, parameters, weight memory, GBOPs per layer
//   table [FILE] [--json]     the cost of every stage S1..S5 beside the paper's Table I
//   random --stage sN --seed N -o FILE [topology flags]
//   run FILE CLIP [--json]    responses of a clip (raw rgb24 file or folder of PPM frames)
//   validate FILE             load and check a file; prints its checksum
//   clip -o FILE --frames N   writes a synthetic raw rgb24 test clip
// Any invalid file makes a command exit non-zero with the reason on stderr.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "billnet/cost.h"
#include "billnet/model.h"
#include "billnet/session.h"
#include "clip_reader.h"

using nlohmann::json;

namespace billnet {
namespace {

// The paper's Table I (BILLNET 2x: size in Mb, GBOPs, Jester top-1 %).
struct PaperRow {
  double size_mb, gbops, top1;
};
constexpr PaperRow kPaper[5] = {{32.23, 718.89, 92.18},
                                {1.01, 24.54, 91.64},
                                {1.01, 8.53, 88.33},
                                {1.01, 6.39, 87.75},
                                {1.01, 6.34, 83.97}};

int Fail(const Status& s) {
  std::fprintf(stderr, "billnet-model: %s\n", s.ToString().c_str());
  return 1;
}

json TopologyToJson(const TopologyConfig& t) {
  return json{{"base_channels", t.base_channels}, {"groups", t.groups},
              {"lstm_units", t.lstm_units},       {"classes", t.classes},
              {"tail_mor_blocks", t.tail_mor_blocks},
              {"input", {{"frames", t.frames}, {"height", t.height}, {"width", t.width}}}};
}

json CostToJson(const CostReport& r) {
  json layers = json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"name", l.name}, {"kind", l.kind}, {"output_shape", l.output_shape},
                      {"params", l.params}, {"macs", l.macs}, {"weight_bits", l.weight_bits},
                      {"input_bits", l.input_bits}, {"input_bits_true", l.input_bits_true},
                      {"input_range", l.input_range}, {"gbops", l.bops / 1e9},
                      {"gbops_true_width", l.bops_true_width / 1e9}});
  return json{{"stage", StageName(r.stage)},
              {"params", r.params},
              {"weight_bits", r.weight_bits},
              {"weight_memory_mbit", r.weight_memory_mbit},
              {"macs", r.macs},
              {"gbops", r.gbops},
              {"gbops_true_width", r.gbops_true_width},
              {"layers", layers}};
}

void PrintCost(const CostReport& r) {
  std::printf("%-16s %-6s %-13s %10s %13s %4s %6s %6s %-22s %10s %10s\n", "layer", "kind",
              "output", "params", "MACs", "w", "in", "in*", "input range", "GBOPs", "GBOPs*");
  for (const auto& l : r.layers)
    std::printf("%-16s %-6s %-13s %10lld %13lld %4d %6.1f %6.1f %-22s %10.4f %10.4f\n",
                l.name.c_str(), l.kind.c_str(), l.output_shape.c_str(), (long long)l.params,
                (long long)l.macs, l.weight_bits, l.input_bits, l.input_bits_true,
                l.input_range.c_str(), l.bops / 1e9, l.bops_true_width / 1e9);
  std::printf("total: %lld parameters, %.4f Mb of weights, %lld MACs, %.3f GBOPs "
              "(%.3f at true input widths)\n",
              (long long)r.params, r.weight_memory_mbit, (long long)r.macs, r.gbops,
              r.gbops_true_width);
  std::printf("(w: weight bits; in: input bits as the paper counts them; in*: true width)\n");
}

int Info(const std::string& path, bool as_json) {
  auto m = Model::LoadFile(path);
  if (!m.ok()) return Fail(m.status());
  const ModelInfo& info = (*m)->info();
  const CostReport cost = ComputeCost((*m)->plan(), info.stage);
  if (as_json) {
    json j = CostToJson(cost);
    j["file"] = path;
    j["name"] = info.name;
    j["topology"] = TopologyToJson(info.topology);
    j["labels"] = info.labels;
    j["frame_rate"] = info.frame_rate;
    j["temperature"] = info.temperature;
    j["checksum"] = info.checksum;
    j["provenance"] = json::parse(info.provenance, nullptr, false);
    j["steps"] = (*m)->plan().steps;
    j["kernel"] = KernelVariant();
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  const auto& t = info.topology;
  std::printf("model %s  (%s)\n", path.c_str(), info.name.empty() ? "unnamed" : info.name.c_str());
  std::printf("stage %s; BILLNET n=%d g=%d lstm=%d classes=%d tail MORs=%d; input %dx%dx%dx3 "
              "at %g fps; output %d steps x %d classes; temperature %g\n",
              StageName(info.stage), t.base_channels, t.groups, t.lstm_units, t.classes,
              t.tail_mor_blocks, t.frames, t.height, t.width, info.frame_rate,
              (*m)->plan().steps, t.classes, info.temperature);
  std::printf("checksum %s\nprovenance %s\n\n", info.checksum.c_str(), info.provenance.c_str());
  PrintCost(cost);
  return 0;
}

int Table(const std::string& path, bool as_json) {
  TopologyConfig topo = Billnet2x();
  if (!path.empty()) {
    auto m = Model::LoadFile(path);
    if (!m.ok()) return Fail(m.status());
    topo = (*m)->info().topology;
  }
  auto plan = BuildPlan(topo);
  if (!plan.ok()) return Fail(plan.status());
  const bool is_2x = topo == Billnet2x();
  json rows = json::array();
  if (!as_json) {
    std::printf("%-6s %12s %10s %10s %12s", "stage", "params", "size Mb", "GBOPs", "GBOPs true");
    if (is_2x) std::printf(" | %12s %12s %9s", "paper Mb", "paper GBOPs", "ratio");
    std::printf("\n");
  }
  for (int s = 1; s <= 5; ++s) {
    const CostReport r = ComputeCost(*plan, Stage(s));
    json row = {{"stage", StageName(Stage(s))}, {"params", r.params},
                {"weight_memory_mbit", r.weight_memory_mbit}, {"gbops", r.gbops},
                {"gbops_true_width", r.gbops_true_width}};
    if (is_2x) {
      row["paper_weight_memory_mbit"] = kPaper[s - 1].size_mb;
      row["paper_gbops"] = kPaper[s - 1].gbops;
      row["paper_top1"] = kPaper[s - 1].top1;
    }
    rows.push_back(row);
    if (!as_json) {
      std::printf("%-6s %12lld %10.2f %10.2f %12.2f", StageName(Stage(s)), (long long)r.params,
                  r.weight_memory_mbit, r.gbops, r.gbops_true_width);
      if (is_2x)
        std::printf(" | %12.2f %12.2f %9.3f", kPaper[s - 1].size_mb, kPaper[s - 1].gbops,
                    r.gbops / kPaper[s - 1].gbops);
      std::printf("\n");
    }
  }
  if (as_json) std::printf("%s\n", json{{"topology", TopologyToJson(topo)}, {"stages", rows}}.dump(2).c_str());
  return 0;
}

int Random(const std::string& stage_text, uint64_t seed, const std::string& out,
           const TopologyConfig& topo, const std::string& name) {
  auto stage = ParseStage(stage_text);
  if (!stage.ok()) return Fail(stage.status());
  auto plan = BuildPlan(topo);
  if (!plan.ok()) return Fail(plan.status());
  ModelInfo info;
  info.name = name;
  info.stage = *stage;
  info.topology = topo;
  if (topo.classes == 27) {
    info.labels = JesterLabels();
  } else {
    for (int i = 0; i < topo.classes; ++i) info.labels.push_back("class " + std::to_string(i));
  }
  info.provenance = json{{"generator", "billnet-model random"}, {"seed", seed},
                         {"note", "random weights, not trained"}}.dump();
  Status s = WriteModelFile(info, RandomWeights(*plan, *stage, seed), out);
  if (!s.ok()) return Fail(s);
  std::printf("wrote %s (%s, seed %llu)\n", out.c_str(), StageName(*stage), (unsigned long long)seed);
  return 0;
}

int Run(const std::string& path, const std::string& clip_path, bool as_json) {
  auto m = Model::LoadFile(path);
  if (!m.ok()) return Fail(m.status());
  const ModelInfo& info = (*m)->info();
  auto clip = ReadClip(clip_path, info.topology.height, info.topology.width);
  if (!clip.ok()) return Fail(clip.status());
  std::vector<int> real;
  auto windows = CutWindows(*clip, info.topology.frames, &real);
  Session session(*m);
  std::vector<Response> responses;
  json jw = json::array();
  for (size_t i = 0; i < windows.size(); ++i) {
    Response r;
    Status s = session.Run(windows[i].data(), windows[i].size(), &r);
    if (!s.ok()) return Fail(s);
    if (as_json) {
      json steps = json::array();
      for (int t = 0; t < r.steps; ++t)
        steps.push_back({{"label", info.labels[r.top_class[t]]}, {"class", r.top_class[t]},
                         {"probability", r.top_probability[t]}});
      jw.push_back({{"sequence", i}, {"real_frames", real[i]},
                    {"padded", real[i] < info.topology.frames}, {"scores", r.scores},
                    {"steps", steps}});
    } else {
      std::printf("window %zu (frames %zu-%zu%s):", i, i * info.topology.frames,
                  i * info.topology.frames + real[i] - 1,
                  real[i] < info.topology.frames ? ", padded" : "");
      for (int t = 0; t < r.steps; ++t)
        std::printf(" %s(%.2f)%s", info.labels[r.top_class[t]].c_str(), r.top_probability[t],
                    t + 1 < r.steps ? "," : "");
      std::printf("\n");
    }
    responses.push_back(std::move(r));
  }
  auto label = ClassifyClip(responses, real, info.topology.frames);
  if (!label.ok()) return Fail(label.status());
  if (as_json) {
    std::printf("%s\n", json{{"model", path}, {"stage", StageName(info.stage)},
                             {"kernel", KernelVariant()}, {"frames", clip->frames},
                             {"label", info.labels[label->label]}, {"class", label->label},
                             {"probability", label->probability}, {"windows", jw}}
                            .dump(2)
                            .c_str());
  } else {
    std::printf("clip: %s (mean probability %.3f over %d steps)\n",
                info.labels[label->label].c_str(), label->probability, label->steps_used);
  }
  return 0;
}

// Share of ones of every binary activation (norm outputs, TGAP selects, MOR
// outputs), averaged over the clip's windows, and the last step's class
// counts. --as-s4 (S3 files): the same weights as an S4 model beside it, i.e.
// every threshold moved to 0 as BSN does (docs/trainer.md, "where S4 breaks").
int Activations(const std::string& path, const std::string& clip_path, bool as_s4, bool as_json) {
  auto m = Model::LoadFile(path);
  if (!m.ok()) return Fail(m.status());
  std::vector<std::shared_ptr<const Model>> models{*m};
  if (as_s4) {
    if ((*m)->stage() != Stage::kS3)
      return Fail(InvalidArgument("--as-s4 takes an S3 model; '" + path + "' is " +
                                  StageName((*m)->stage())));
    ModelInfo info = (*m)->info();
    info.stage = Stage::kS4;
    ModelWeights w = (*m)->weights();
    for (auto& [name, p] : w.norm) {
      p.shift.assign(p.threshold.size(), 0);
      p.threshold.clear();
      p.polarity.clear();
    }
    auto m4 = Model::FromParts(info, std::move(w));
    if (!m4.ok()) return Fail(m4.status());
    models.push_back(*m4);
  }
  const ModelInfo& info = (*m)->info();
  auto clip = ReadClip(clip_path, info.topology.height, info.topology.width);
  if (!clip.ok()) return Fail(clip.status());
  std::vector<int> real;
  auto windows = CutWindows(*clip, info.topology.frames, &real);
  std::vector<std::string> names;
  std::vector<std::map<std::string, double>> ones(models.size());
  std::vector<std::map<int, int>> last_class(models.size());
  for (size_t k = 0; k < models.size(); ++k) {
    Session session(models[k], KernelChoice::kReference);
    for (const auto& w : windows) {
      Response r;
      std::vector<TracedTensor> trace;
      if (Status s = session.Run(w.data(), w.size(), &r, &trace); !s.ok()) return Fail(s);
      for (const TracedTensor& t : trace) {
        if (!t.is_integer || t.ints.empty()) continue;
        const bool binary = std::all_of(t.ints.begin(), t.ints.end(),
                                        [](int64_t v) { return v == 0 || v == 1; });
        const bool activation = t.name.find("norm") != std::string::npos ||
                                t.name.find("select") != std::string::npos ||
                                t.name.rfind("mor", 0) == 0;
        if (!binary || !activation) continue;
        if (k == 0 && !ones[0].count(t.name)) names.push_back(t.name);
        ones[k][t.name] += double(std::count(t.ints.begin(), t.ints.end(), int64_t(1))) /
                           double(t.ints.size()) / double(windows.size());
      }
      ++last_class[k][r.top_class[r.steps - 1]];
    }
  }
  const char* kinds[2] = {"file", "as_s4"};
  if (as_json) {
    json out{{"model", path}, {"stage", StageName(info.stage)}, {"windows", windows.size()}};
    for (size_t k = 0; k < models.size(); ++k) {
      json layers = json::object(), classes = json::object();
      for (const auto& n : names) layers[n] = ones[k][n];
      for (const auto& [c, count] : last_class[k]) classes[info.labels[c]] = count;
      out[kinds[k]] = {{"ones", layers}, {"last_step_classes", classes}};
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-20s %10s%s\n", "activation", "ones", as_s4 ? "   as S4" : "");
  for (const auto& n : names) {
    std::printf("%-20s %10.3f", n.c_str(), ones[0][n]);
    if (as_s4) std::printf(" %8.3f", ones[1][n]);
    std::printf("\n");
  }
  for (size_t k = 0; k < models.size(); ++k) {
    std::printf("last step's class (%s):", k ? "as S4" : "file");
    for (const auto& [c, count] : last_class[k])
      std::printf(" %s x%d,", info.labels[c].c_str(), count);
    std::printf("\n");
  }
  return 0;
}

int Validate(const std::string& path) {
  auto m = Model::LoadFile(path);
  if (!m.ok()) return Fail(m.status());
  std::printf("%s: valid %s model, %s\n", path.c_str(), StageName((*m)->stage()),
              (*m)->info().checksum.c_str());
  return 0;
}

int WriteClip(const std::string& out, int frames, int height, int width) {
  if (frames < 1 || height < 1 || width < 1 || frames > 100000)
    return Fail(InvalidArgument("clip size must be positive"));
  Clip c = MovingDiscClip(frames, height, width);
  std::ofstream f(out, std::ios::binary);
  if (!f.write(reinterpret_cast<const char*>(c.rgb.data()), std::streamsize(c.rgb.size())))
    return Fail(NotFound("cannot write '" + out + "'"));
  std::printf("wrote %s (%d frames of %dx%d rgb24)\n", out.c_str(), frames, width, height);
  return 0;
}

}  // namespace
}  // namespace billnet

int main(int argc, char** argv) {
  using namespace billnet;
  CLI::App app{"billnet-model: inspect, create and run BILLNET model files"};
  app.require_subcommand(1);

  bool json_out = false;
  std::string file, clip_path, out, stage = "s5", name;
  uint64_t seed = 1;
  TopologyConfig topo = Billnet2x();
  int frames = 40;

  auto* info = app.add_subcommand("info", "topology, parameters, weight memory and GBOPs");
  info->add_option("file", file, "model file")->required();
  info->add_flag("--json", json_out, "JSON output");

  auto* table = app.add_subcommand("table", "cost of every stage beside the paper's Table I");
  table->add_option("file", file, "model file whose topology to use (default BILLNET 2x)");
  table->add_flag("--json", json_out, "JSON output");

  auto* random = app.add_subcommand("random", "write a valid model with random weights");
  random->add_option("--stage", stage, "s1..s5")->required();
  random->add_option("--seed", seed, "random seed");
  random->add_option("-o,--output", out, "output file")->required();
  random->add_option("--name", name, "model name stored in the file");
  random->add_option("--base-channels", topo.base_channels, "n (default 64)");
  random->add_option("--groups", topo.groups, "g (default 4)");
  random->add_option("--lstm-units", topo.lstm_units, "4m (default 128)");
  random->add_option("--classes", topo.classes, "classes (default 27)");
  random->add_option("--tail-mor-blocks", topo.tail_mor_blocks, "MOR(4n) blocks (default 2)");
  random->add_option("--frames", topo.frames, "input frames (default 16)");
  random->add_option("--height", topo.height, "input height (default 96)");
  random->add_option("--width", topo.width, "input width (default 128)");

  auto* run = app.add_subcommand("run", "responses for a clip");
  run->add_option("file", file, "model file")->required();
  run->add_option("clip", clip_path, "raw rgb24 file or folder of .ppm frames")->required();
  run->add_flag("--json", json_out, "JSON output");

  bool as_s4 = false;
  auto* activations = app.add_subcommand(
      "activations", "share of ones of every binary activation over a clip (S3-S5)");
  activations->add_option("file", file, "model file")->required();
  activations->add_option("clip", clip_path, "raw rgb24 file or folder of .ppm frames")->required();
  activations->add_flag("--as-s4", as_s4, "also the same S3 weights with every threshold at 0");
  activations->add_flag("--json", json_out, "JSON output");

  auto* validate = app.add_subcommand("validate", "load and check a model file");
  validate->add_option("file", file, "model file")->required();

  int height = 96, width = 128;
  auto* clip = app.add_subcommand("clip", "write a synthetic raw rgb24 test clip");
  clip->add_option("-o,--output", out, "output file")->required();
  clip->add_option("--frames", frames, "frames (default 40)");
  clip->add_option("--height", height, "height (default 96)");
  clip->add_option("--width", width, "width (default 128)");

  CLI11_PARSE(app, argc, argv);
  if (info->parsed()) return Info(file, json_out);
  if (table->parsed()) return Table(file, json_out);
  if (random->parsed()) return Random(stage, seed, out, topo, name);
  if (run->parsed()) return Run(file, clip_path, json_out);
  if (activations->parsed()) return Activations(file, clip_path, as_s4, json_out);
  if (validate->parsed()) return Validate(file);
  if (clip->parsed()) return WriteClip(out, frames, height, width);
  return 1;
}
