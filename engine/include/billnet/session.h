// Per-stream inference: a Session holds one stream's LSTM state (h, c) and runs
// 16-frame windows through a shared, immutable Model. DESIGN.md section 3.1.
//
// Thread-safety: a Session is used by one thread at a time; different
// sessions (on the same Model or not) run concurrently without locking.
#ifndef BILLNET_SESSION_H_
#define BILLNET_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "billnet/model.h"
#include "billnet/status.h"
#include "billnet/thread_pool.h"

namespace billnet {

// One window's result: the class-temporal response.
struct Response {
  int steps = 0;    // 8 for BILLNET 2x
  int classes = 0;  // 27
  // Raw scores, steps x classes, exactly as the engine computes them. In S5
  // they are integers (also in `integer_scores`); before S5 floats.
  std::vector<float> scores;
  std::vector<int32_t> integer_scores;  // S5 only
  bool scores_are_integers = false;
  // softmax(scores / temperature) per step, temperature from the model file.
  std::vector<float> probabilities;
  std::vector<int> top_class;  // per step; ties to the lowest index
  std::vector<float> top_probability;
};

// An intermediate tensor recorded by a traced run (tests, `verify`).
struct TracedTensor {
  std::string name;  // "cf1.gconv", "cf1.norm", "mor1.select", "gap", ...
  std::vector<int64_t> shape;
  bool is_integer = false;
  std::vector<int64_t> ints;  // when is_integer
  std::vector<double> floats;
};

// Which kernels a session runs (docs/engine.md "Fast path").
//   kDefault:   the environment variable BILLNET_KERNELS ("reference" or
//               "fast") if set, else fast; an unknown value is reported once
//               on stderr and ignored.
//   kReference: the scalar reference kernels (the specification).
//   kFast:      the fast integer kernels for S3-S5. S1-S2 (float) always run
//               the reference kernels: there is no fast float path yet.
enum class KernelChoice { kDefault, kReference, kFast };

// What the environment asks for: kReference or kFast from BILLNET_KERNELS,
// kFast when it is unset or unknown.
KernelChoice KernelChoiceFromEnvironment();

// Name of the kernel variant a session of an integer stage (S3-S5) gets by
// default (a metric label, logged at server start): "fast/avx512",
// "fast/avx2" or "fast/portable" (the fast kernels and the instruction set BILLNET_FAST_ISA
// or the CPU picks), or "reference" when BILLNET_KERNELS=reference. S1-S2
// always run the reference kernels; Session::kernels() says what one session
// runs.
const char* KernelVariant();

class Session {
 public:
  // `model` must not be null. A session holds its LSTM state only: the fast
  // path's scratch (about 2 MB for BILLNET 2x) belongs to the model and is
  // borrowed for each run, so a model holds a set per window running at once,
  // not per session (decision 28). Once as many runs as ever ran at once have
  // run, Run allocates nothing beyond the Response's vectors on first use and
  // the trace.
  explicit Session(std::shared_ptr<const Model> model,
                   KernelChoice kernels = KernelChoice::kDefault);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // The kernels Run uses: "fast" or "reference" (a metric label).
  const char* kernels() const { return fast_ ? "fast" : "reference"; }

  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& shared_model() const { return model_; }

  // Runs one window: `rgb` holds frames x height x width x 3 bytes of the
  // model's geometry (Model::window_bytes()), frame-major, row-major, RGB
  // interleaved. Carries the LSTM state on to the next window. InvalidArgument
  // if the size is wrong; the state is unchanged on error. If `trace` is set,
  // every intermediate tensor is appended to it (the same names, shapes and
  // values on both kernel paths). On the fast path `out` is filled in place.
  // With a `pool`, the fast path splits each layer's rows over its threads
  // (same result; ignored when tracing and on the reference kernels).
  Status Run(const uint8_t* rgb, size_t size, Response* out,
             std::vector<TracedTensor>* trace = nullptr, ThreadPool* pool = nullptr);

  // Zeroes h and c (a new stream).
  void Reset();

  // The LSTM state as a small self-describing blob (stage, units, h, c), for
  // state tokens; ImportState accepts only a blob of the same stage and size.
  std::vector<uint8_t> ExportState() const;
  Status ImportState(const uint8_t* data, size_t size);

  // The state itself (tests): S1-S4 floats, S5 values in {-1, 0, 1}.
  const std::vector<float>& h() const { return h_; }
  const std::vector<float>& c() const { return c_; }

 private:
  friend Status RunBatch(Session* const*, const uint8_t* const*, size_t, Response*, ThreadPool*);

  std::shared_ptr<const Model> model_;
  std::vector<float> h_, c_;
  bool fast_ = false;  // the fast kernels, else the reference
  int fast_isa_ = 0;   // their variant (FastIsa, engine-internal)
};

// Runs windows of several sessions in one call (one window per session, the
// sessions distinct). Each result equals what Session::Run would give. With a
// `pool`, the windows run on its threads at once and each window's rows are
// split over whichever threads are free. On error (the lowest failing entry's
// status, with its index) the other entries may have run.
Status RunBatch(Session* const* sessions, const uint8_t* const* windows, size_t count,
                Response* responses, ThreadPool* pool = nullptr);

// Fills probabilities and top classes from scores (softmax over classes of
// scores / temperature, per step; ties to the lowest index).
void ComputeProbabilities(double temperature, Response* r);

// Output steps of a window that cover at least one real (not padded) frame:
// step t covers input frames [t*frames/steps, (t+1)*frames/steps), so with
// `real_frames` real frames at the window's start this is
// ceil(real_frames * steps / frames).
int RealSteps(int steps, int frames, int real_frames);

// A whole clip's label (DESIGN.md section 3): the class with the highest mean
// probability over the steps that cover at least one real frame; ties to the
// lowest index. real_frames[i] is window i's count of real frames.
struct ClipLabel {
  int label = 0;
  float probability = 0;
  std::vector<float> mean_probabilities;  // per class
  int steps_used = 0;
};
StatusOr<ClipLabel> ClassifyClip(const std::vector<Response>& windows,
                                 const std::vector<int>& real_frames, int frames);

}  // namespace billnet

#endif  // BILLNET_SESSION_H_
