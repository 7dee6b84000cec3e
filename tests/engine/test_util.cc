#include "test_util.h"

#include <gtest/gtest.h>

#include "rng.h"

namespace billnet::testing {

TopologyConfig TinyTopology() {
  TopologyConfig t;
  t.base_channels = 8;
  t.groups = 2;
  t.lstm_units = 16;
  t.classes = 5;
  t.tail_mor_blocks = 1;
  t.frames = 8;
  t.height = 32;
  t.width = 32;
  return t;
}

ModelInfo TinyInfo(Stage stage, const TopologyConfig& topo) {
  ModelInfo info;
  info.name = "tiny";
  info.stage = stage;
  info.topology = topo;
  for (int i = 0; i < topo.classes; ++i) info.labels.push_back("class" + std::to_string(i));
  return info;
}

std::string RandomModelBytes(Stage stage, uint64_t seed, const TopologyConfig& topo) {
  auto plan = BuildPlan(topo);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  auto bytes = SerializeModel(TinyInfo(stage, topo), RandomWeights(*plan, stage, seed));
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::string();
}

std::shared_ptr<const Model> RandomModel(Stage stage, uint64_t seed, const TopologyConfig& topo) {
  const std::string bytes = RandomModelBytes(stage, seed, topo);
  auto m = Model::LoadBuffer(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "random");
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

std::vector<uint8_t> RandomWindow(const Model& m, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> w(m.window_bytes());
  for (auto& b : w) b = uint8_t(rng.Below(256));
  return w;
}

}  // namespace billnet::testing
