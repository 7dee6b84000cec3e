// billnet-bench on a tiny topology, one repetition, --json: every field is
// there and sane, and the per-layer op counts are engine/cost.h's. Timings
// are only checked to be positive (tests assert behaviour, never speed).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "billnet/cost.h"
#include "billnet/topology.h"

namespace billnet {
namespace {

using nlohmann::json;

const char kTiny[] =
    " --base-channels 8 --groups 2 --lstm-units 8 --classes 5 --frames 4 --height 16 --width 16";

TopologyConfig TinyConfig() {
  TopologyConfig c;
  c.base_channels = 8;
  c.groups = 2;
  c.lstm_units = 8;
  c.classes = 5;
  c.frames = 4;
  c.height = 16;
  c.width = 16;
  return c;
}

// Runs billnet-bench with `args`; returns stdout, sets the exit status.
std::string RunBench(const std::string& args, int* status) {
  const std::string cmd = std::string(BILLNET_BENCH_BINARY) + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *status = -1;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int w = pclose(p);
  *status = WIFEXITED(w) ? WEXITSTATUS(w) : -1;
  return out;
}

bool Positive(const json& v) { return v.is_number() && v.get<double>() > 0; }

TEST(BillnetBench, JsonOnTinyTopology) {
  const std::filesystem::path plot = std::filesystem::temp_directory_path() /
                                     ("billnet_bench_test_" + std::to_string(getpid()) + ".png");
  int status = 0;
  const std::string out = RunBench(std::string(kTiny) +
                                       " --repetitions 1 --reference-repetitions 1 --min-time 0"
                                       " --json --plot " +
                                       plot.string(),
                                   &status);
  ASSERT_EQ(status, 0) << out;
  const json j = json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "not one JSON object:\n" << out;

  ASSERT_TRUE(j.contains("kernel") && j["kernel"].is_string());
  EXPECT_FALSE(j["kernel"].get<std::string>().empty());
  ASSERT_TRUE(j.contains("machine"));
  EXPECT_TRUE(j["machine"]["cpu"].is_string());
  EXPECT_EQ(j["topology"]["base_channels"], 8);
  EXPECT_EQ(j["topology"]["frames"], 4);

  // Every stage at batch 1 and 8, S1-S2 on the reference path.
  ASSERT_TRUE(j["stages"].is_array());
  ASSERT_EQ(j["stages"].size(), 10u);
  int k = 0;
  for (int stage = 1; stage <= 5; ++stage)
    for (int batch : {1, 8}) {
      const json& s = j["stages"][k++];
      SCOPED_TRACE(s.dump());
      EXPECT_EQ(s["stage"].get<std::string>(), StageName(Stage(stage)));
      EXPECT_EQ(s["batch"], batch);
      if (stage <= 2) {
        EXPECT_EQ(s["kernels"], "reference");
      }
      EXPECT_TRUE(Positive(s["cpu_ms_per_clip"]));
      EXPECT_TRUE(Positive(s["wall_ms_per_clip"]));
      EXPECT_TRUE(Positive(s["clips_per_s_per_core"]));
      EXPECT_TRUE(Positive(s["gmacs_per_s"]));
      EXPECT_TRUE(Positive(s["macs_per_clip"]));
    }

  // S3-S5 on every kernel variant the CPU has, in the same run: the portable
  // one always, each variant at every integer stage and batch.
  ASSERT_TRUE(j["variants"].is_array());
  std::map<std::string, int> rows_per_variant;
  for (const auto& v : j["variants"]) {
    SCOPED_TRACE(v.dump());
    const std::string name = v["variant"].get<std::string>();
    EXPECT_EQ(name.rfind("fast/", 0), 0u);
    ++rows_per_variant[name];
    const std::string stage = v["stage"].get<std::string>();
    EXPECT_TRUE(stage == "s3" || stage == "s4" || stage == "s5");
    EXPECT_TRUE(v["batch"] == 1 || v["batch"] == 8);
    EXPECT_TRUE(Positive(v["cpu_ms_per_clip"]));
    EXPECT_TRUE(Positive(v["ratio_vs_default"]));
  }
  EXPECT_EQ(rows_per_variant.count("fast/portable"), 1u);
  for (const auto& [name, n] : rows_per_variant) EXPECT_EQ(n, 6) << name;

  // Roofline: one measured rate per op.
  ASSERT_TRUE(j["roofline"]["instructions"].is_array());
  ASSERT_EQ(j["roofline"]["instructions"].size(), 4u);
  for (const auto& ir : j["roofline"]["instructions"]) {
    EXPECT_TRUE(ir["instruction"].is_string());
    EXPECT_TRUE(Positive(ir["gmacs_per_s"])) << ir.dump();
  }
  EXPECT_TRUE(Positive(j["roofline"]["limit_ms_per_clip"]));

  // Per layer: the S5 cost report's layers with MACs, in order, same counts.
  auto plan = BuildPlan(TinyConfig());
  ASSERT_TRUE(plan.ok());
  const CostReport cost = ComputeCost(*plan, Stage::kS5);
  ASSERT_TRUE(j["layers"].is_array());
  size_t li = 0;
  double limit_us = 0;
  int64_t conv_macs = 0;
  for (const auto& lc : cost.layers) {
    if (lc.kind == "norm") continue;
    ASSERT_LT(li, j["layers"].size());
    const json& l = j["layers"][li++];
    SCOPED_TRACE(l.dump());
    EXPECT_EQ(l["name"], lc.name);
    EXPECT_EQ(l["kind"], lc.kind);
    EXPECT_EQ(l["macs"].get<int64_t>(), lc.macs);
    EXPECT_DOUBLE_EQ(l["input_bits"].get<double>(), lc.input_bits_true);
    EXPECT_TRUE(l["roofline_op"].is_string());
    EXPECT_TRUE(Positive(l["limit_us"]));
    limit_us += l["limit_us"].get<double>();
    if (lc.kind == "conv") {
      conv_macs += lc.macs;
      EXPECT_TRUE(l["fast_kernel"].is_string());
      EXPECT_TRUE(Positive(l["cpu_us"]));
      EXPECT_TRUE(Positive(l["limit_fraction"]));
      // The binary first pointwise is the only popcount layer.
      EXPECT_EQ(l["roofline_op"] == "popcount", lc.input_bits_true <= 1);
      // And the layer on every variant, each once, the portable one included.
      ASSERT_TRUE(l["by_variant"].is_array());
      std::map<std::string, int> seen;
      for (const auto& v : l["by_variant"]) {
        ++seen[v["variant"].get<std::string>()];
        EXPECT_TRUE(v["fast_kernel"].is_string());
        EXPECT_TRUE(Positive(v["cpu_us"]));
      }
      EXPECT_EQ(seen.size(), rows_per_variant.size());
      EXPECT_EQ(seen.count("fast/portable"), 1u);
      for (const auto& [name, n] : seen) EXPECT_EQ(n, 1) << name;
    }
  }
  EXPECT_EQ(li, j["layers"].size());
  EXPECT_NEAR(limit_us * 1e-3, j["roofline"]["limit_ms_per_clip"].get<double>(), 1e-9);
  int64_t width_macs = 0;
  for (const auto& w : j["macs_per_s_by_input_width"]) {
    EXPECT_TRUE(Positive(w["gmacs_per_s"]));
    width_macs += w["macs"].get<int64_t>();
  }
  EXPECT_EQ(width_macs, conv_macs);

  ASSERT_TRUE(j["limit_fraction"].is_number());
  EXPECT_GT(j["limit_fraction"].get<double>(), 0);
  EXPECT_LE(j["limit_fraction"].get<double>(), 1.5);

  // libtorch: measured where it was built in, else said to be unavailable.
  ASSERT_TRUE(j["libtorch"]["available"].is_boolean());
  if (j["libtorch"]["available"]) {
    ASSERT_EQ(j["libtorch"]["variants"].size(), 6u);
    bool any = false;
    for (const auto& v : j["libtorch"]["variants"]) {
      SCOPED_TRACE(v.dump());
      EXPECT_TRUE(v["variant"].is_string());
      if (v["implemented"]) {
        any = true;
        EXPECT_TRUE(Positive(v["cpu_ms_per_clip"]));
      } else {
        EXPECT_TRUE(v["error"].is_string());
      }
    }
    EXPECT_TRUE(any);
    EXPECT_TRUE(Positive(j["speedup_vs_libtorch"]));
  } else {
    EXPECT_TRUE(j["speedup_vs_libtorch"].is_null());
  }

  // The plot is a PNG.
  std::ifstream png(plot, std::ios::binary);
  char sig[8] = {};
  png.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
  std::filesystem::remove(plot);
}

TEST(BillnetBench, RejectsAStageThatDoesNotExist) {
  int status = 0;
  RunBench(std::string(kTiny) + " --stages 6 --json", &status);
  EXPECT_EQ(status, 2);
}

TEST(BillnetBench, WithoutLibtorchSpeedupIsNull) {
  int status = 0;
  const std::string out = RunBench(std::string(kTiny) +
                                       " --stages 5 --batch 1 --repetitions 1 --min-time 0"
                                       " --no-layers --no-libtorch --json",
                                   &status);
  ASSERT_EQ(status, 0) << out;
  const json j = json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_TRUE(j["speedup_vs_libtorch"].is_null());
  EXPECT_TRUE(j["limit_fraction"].is_number());
  for (const auto& l : j["layers"]) EXPECT_TRUE(l["cpu_us"].is_null());
}

}  // namespace
}  // namespace billnet
