// Helpers shared by the engine tests: tiny topologies and random models.
#ifndef BILLNET_TESTS_ENGINE_TEST_UTIL_H_
#define BILLNET_TESTS_ENGINE_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "billnet/model.h"

namespace billnet::testing {

// A tiny BILLNET (n=8, g=2, lstm 16, 5 classes, 8 x 32 x 32 input, 1 tail MOR):
// every block of the real topology, fast enough for unit tests.
TopologyConfig TinyTopology();
ModelInfo TinyInfo(Stage stage, const TopologyConfig& topo = TinyTopology());
// A random model of `stage` (seeded), loaded through the file format.
std::shared_ptr<const Model> RandomModel(Stage stage, uint64_t seed,
                                         const TopologyConfig& topo = TinyTopology());
// Serialized bytes of a random model.
std::string RandomModelBytes(Stage stage, uint64_t seed,
                             const TopologyConfig& topo = TinyTopology());
// A random window of the model's geometry (seeded).
std::vector<uint8_t> RandomWindow(const Model& m, uint64_t seed);

}  // namespace billnet::testing

#endif  // BILLNET_TESTS_ENGINE_TEST_UTIL_H_
