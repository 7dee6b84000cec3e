// The engine's prepared form of a model: weights rearranged for the kernels.
// Built once at load; immutable but for the runner pool's bookkeeping.
#ifndef BILLNET_ENGINE_PREPARED_H_
#define BILLNET_ENGINE_PREPARED_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "billnet/model.h"

namespace billnet {

struct FastWeights;     // fast_runner.h
class FastRunnerPool;  // fast_runner.h

struct PreparedConv {
  // Weights as [co][kt][kh][kw][ci/g]: float in S1-S2, +-1 as int8 in S3-S5.
  std::vector<float> wf;
  std::vector<int8_t> wi;
};

struct Model::Prepared {
  // convs[b][i] is plan.blocks[b].convs[i]; norms[b][j] is its norms[j].
  std::vector<std::vector<PreparedConv>> convs;
  std::vector<std::vector<const NormParams*>> norms;
  // LSTM: S1 float; S2-S4 float = scale * sign; S5 int8 signs.
  std::vector<float> lstm_ih_f, lstm_hh_f;
  std::vector<int8_t> lstm_ih_i, lstm_hh_i;
  // Dense: S1 float; S2-S4 float = scale * tern; S5 int8 ternary.
  std::vector<float> dense_f;
  std::vector<int8_t> dense_i;
  // S3-S5: the same weights in the fast kernels' layouts (fast_runner.h).
  std::shared_ptr<const FastWeights> fast;
  // Where fast is set: the scratch its sessions borrow for each run (the one
  // mutable part of a loaded model; thread-safe).
  std::shared_ptr<FastRunnerPool> runners;
};

}  // namespace billnet

#endif  // BILLNET_ENGINE_PREPARED_H_
