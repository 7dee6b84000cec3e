#include <gtest/gtest.h>
#include "billnet/model.h"
#include "billnet/session.h"
TEST(Smoke, Loads) {
  for (int s = 1; s <= 5; ++s) {
    billnet::TopologyConfig t; t.base_channels = 8; t.groups = 2; t.lstm_units = 16; t.classes = 5; t.frames = 8; t.height = 32; t.width = 32;
    auto plan = billnet::BuildPlan(t);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    billnet::ModelInfo info; info.stage = billnet::Stage(s); info.topology = t; info.labels = {"a","b","c","d","e"};
    auto bytes = billnet::SerializeModel(info, billnet::RandomWeights(*plan, info.stage, 7));
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto m = billnet::Model::LoadBuffer((const uint8_t*)bytes->data(), bytes->size(), "x");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    billnet::Session sess(*m);
    std::vector<uint8_t> w((*m)->window_bytes(), 100);
    billnet::Response r;
    ASSERT_TRUE(sess.Run(w.data(), w.size(), &r).ok());
  }
}
