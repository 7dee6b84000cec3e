// The fast path of the integer stages (S3-S5): the model's weights in the
// fast kernels' layouts (built once at load, shared), and runners that own
// every scratch buffer of a run (allocated once, sized from the plan), so Run
// allocates nothing unless tracing. A model's sessions borrow runners from
// its FastRunnerPool for each run (decision 28). See docs/engine.md
// "Fast path".
#ifndef BILLNET_ENGINE_FAST_RUNNER_H_
#define BILLNET_ENGINE_FAST_RUNNER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "billnet/model.h"
#include "billnet/session.h"
#include "billnet/thread_pool.h"
#include "kernels/fast/bitpack.h"
#include "kernels/fast/fast_kernels_avx2.h"
#include "kernels/fast/isa.h"

namespace billnet {

// One convolution in its fast form; which member is used depends on the role
// and the variant (isa.h). The AVX2 layouts exist only where AVX2 does.
struct FastConv {
  // Stem and grouped 3x3x3: +-1 as int16 rows [co][kpad] (fast_kernels.h).
  std::vector<int16_t> rows;
  int kpad = 0;
  // The same in the AVX2 layout; out16: every sum of this (grouped) conv fits
  // int16 (taps * ci/g * max|input| <= 32767), so AVX2 writes int16 and the
  // second pointwise reads int16 pairs.
  TapsBlocked taps;
  bool out16 = false;
  // The same as u8 x s8 (AVX2 only, where TapsU8Fits): the stem on its u8
  // pixels; a grouped conv whose input [-ci, ci] fits u8 as v + ci (u8_offset).
  // p_form: a grouped conv with ci >= 128 reading p = popcount(a & w+) as u8
  // and the P plane (TapsU8's p form).
  TapsU8 taps8;
  // The same layer's u8 form in the 16-lane layout of ConvRowTapsU8Avx512
  // (only where the CPU has the avx512 variant; same form as taps8).
  TapsU8 taps8_avx512;
  bool u8 = false, p_form = false;
  int u8_offset = 0;
  // First pointwise of a CF (binary input): bit set where w = +1, [co][words].
  std::vector<BitWord> wpos;
  int words = 0;
  // The same for PointwiseBinaryAvx2 (AVX2 only) and PointwiseBinaryAvx512
  // (only where the CPU has the avx512 variant).
  std::vector<BitWord> wpos_avx2, wpos_avx512;
  // Second pointwise of a CF (int32 input): -1 where w = +1, else 0, [co][ci].
  std::vector<int32_t> wpos_mask;
  // The same for AVX2: subset-sum tables (read on int16 after an out16
  // grouped conv, else on int32).
  PointwiseSubsets pw_sets;
};

// A norm + Heaviside as an interval: bit = lo <= x <= hi (fast_kernels.h).
struct FastNorm {
  std::vector<int32_t> lo, hi;
};

struct FastWeights {
  std::vector<std::vector<FastConv>> convs;  // [block][conv], as Model::Prepared
  std::vector<std::vector<FastNorm>> norms;  // [block][norm]
  // S5 QLSTM weights as masks: -1 where w = -1, else 0.
  std::vector<int32_t> lstm_ih_neg, lstm_hh_neg;
};

// The interval form of one norm (S3 threshold/polarity, S4-S5 x > 0).
FastNorm MakeFastNorm(int channels, const NormParams& p, Stage stage);

// Builds the fast form of an S3-S5 model (called by the model loader).
std::shared_ptr<const FastWeights> PrepareFastWeights(const TopologyPlan& plan, Stage stage,
                                                      const Model::Prepared& prep);

// Runs windows through the fast kernels; the LSTM state comes from the caller,
// so a runner holds scratch only and serves any session of its model. Not
// thread-safe (one run at a time); one Run may split its rows over a
// ThreadPool.
class FastRunner {
 public:
  // isa: the kernel variant (must be supported: FastIsaSupported); the
  // one-argument form takes FastIsaFromEnvironment().
  explicit FastRunner(const Model& model);
  FastRunner(const Model& model, FastIsa isa);

  FastIsa isa() const { return isa_; }

  // As Session::Run after the size check: `rgb` is one window; h, c the
  // session's LSTM state (updated); `out` is filled in place (its vectors
  // keep their capacity); `trace`, if set, gets the reference's tensors.
  // With a `pool` (ignored when tracing) the rows of each layer are split over
  // its threads; the first Run with a larger pool than before allocates that
  // many more sets of row scratch (~100 KB each for BILLNET 2x), once.
  void Run(const uint8_t* rgb, std::vector<float>& h, std::vector<float>& c, Response* out,
           std::vector<TracedTensor>* trace, ThreadPool* pool = nullptr);

  // Row scratch for `slots` threads (a pool's slots()), so a Run on such a
  // pool allocates nothing; allocates only when it has fewer.
  void ReserveSlots(int slots);

  // Bytes of scratch this runner holds.
  size_t scratch_bytes() const;

 private:
  struct TraceUnit;
  // What one thread needs to compute a row of any layer.
  struct RowScratch {
    std::vector<int16_t> col;          // im2col of one output position
    std::vector<int32_t> gconv_row;    // one row of a grouped conv's output
    std::vector<int16_t> gconv_row16;  // the same as int16 (AVX2, out16 convs)
    std::vector<int32_t> rows;         // two pre-pool rows
    std::vector<int32_t> pooled;       // one pooled row
    std::vector<int32_t> counts;       // TGAP counts of one time step
    std::vector<BitWord> select;       // TGAP select of one time step
    std::vector<int32_t> pw_tables;    // a second pointwise's subset-sum tables (AVX2)
  };
  // Runs fn(i, slot) for i in [0, n): over pool_ when set, else in order.
  template <typename Fn>
  void For(int64_t n, Fn&& fn);
  // A stem or CF: rows of the pre-pool int32 output -> [pool] -> norm -> bits.
  template <typename RowFn>
  void Unit(const Shape4& pre, const Shape4& post, bool pool, const FastNorm& norm,
            RowFn&& fill_row, BitWord* out, TraceUnit* tu);
  void Cf(const BlockSpec& b, int first_conv, const std::vector<FastConv>& fc, const FastNorm& norm,
          const BitWord* in, const Shape4& pre, bool pool, const std::string& pool_name,
          BitWord* out, std::vector<TracedTensor>* trace);

  const Model& model_;
  const FastWeights& fw_;
  FastIsa isa_;
  ThreadPool* pool_ = nullptr;     // of the Run in progress
  std::vector<RowScratch> slots_;  // per thread of a Run (ThreadPool slots)
  // Padded int16 inputs hold kAvx2InputSlack zeros past their end.
  std::vector<int16_t> stem_in_;          // padded stem input (border stays 0)
  std::vector<uint8_t> stem_in8_;         // the same as u8 pixels (AVX2 u8 stem)
  std::vector<int16_t> mid_;              // padded grouped-conv input (border zeroed per use)
  std::vector<uint8_t> mid8_;             // the same as u8 v + ci, or p (AVX2 u8 grouped convs)
  std::vector<int16_t> pplane_;           // P per position, padded (p-form grouped convs)
  std::vector<BitWord> bits_[3];          // activations: current, MOR's a, next / MOR's i1
  std::vector<int32_t> gap_;              // [steps][channels] bit counts
  std::vector<int32_t> h32_, c32_, z32_;  // S5 QLSTM
  std::vector<float> xf_, zf_;            // S3-S4 float LSTM
};

// The runners of one model, shared by all its sessions (decision 28): a run
// borrows runners that no other run holds and gives them back, so the model
// holds scratch for as many windows as run at once, not a set per stream.
// A thread gets the runner it gave back last when that one is idle (its
// scratch is likeliest in that core's cache), else the one given back last by
// any thread. Thread-safe.
class FastRunnerPool {
 public:
  explicit FastRunnerPool(const Model& model) : model_(model) {}
  FastRunnerPool(const FastRunnerPool&) = delete;
  FastRunnerPool& operator=(const FastRunnerPool&) = delete;

  // Lends `n` runners of variant `isa` with row scratch for `slots` threads
  // (ReserveSlots) into out[0..n); makes new ones only when too few are idle.
  void Borrow(FastIsa isa, int slots, FastRunner** out, int n);
  // Gives back runners that Borrow lent.
  void GiveBack(FastRunner* const* runners, int n);

  // Runners made so far (lent or idle) and the bytes of scratch they hold
  // (scratch_bytes reads lent runners too: call it while no run is under way).
  int runners() const;
  size_t scratch_bytes() const;

 private:
  const Model& model_;
  mutable std::mutex mu_;
  struct Idle {
    FastRunner* runner;
    std::thread::id last;  // the thread that gave it back
  };
  std::vector<std::unique_ptr<FastRunner>> all_;
  std::vector<Idle> idle_;  // capacity >= all_.size(): GiveBack never allocates
};

}  // namespace billnet

#endif  // BILLNET_ENGINE_FAST_RUNNER_H_
