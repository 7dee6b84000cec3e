// Scalar reference kernels: the specification every optimized kernel is
// tested against. Plain loops in a fixed order (so float results do not depend
// on batching or threads). Layouts:
//   activations  T x H x W x C, channel last, row-major;
//   conv weights [co][kt][kh][kw][ci/groups] (Model::Prepared order);
//   dense / LSTM [rows][inputs].
// Padding is 0 in every domain (mid-grey input, 0 bits, 0 integers).
#ifndef BILLNET_ENGINE_KERNELS_REFERENCE_H_
#define BILLNET_ENGINE_KERNELS_REFERENCE_H_

#include <cstdint>

#include "billnet/topology.h"

namespace billnet {

// Conv3d (grouped, strided, padded), no bias. In/W/Acc: float/float/float in
// S1-S2; in S3-S5 int32 or uint8 inputs, int8 +-1 weights, int32 sums.
template <typename In, typename W, typename Acc>
void Conv3dReference(const ConvSpec& c, const In* in, const W* w, Acc* out) {
  const Shape4& is = c.in;
  const Shape4& os = c.out;
  const int cig = c.ci / c.groups, cog = c.co / c.groups;
  for (int t = 0; t < os.t; ++t)
    for (int y = 0; y < os.h; ++y)
      for (int x = 0; x < os.w; ++x) {
        Acc* o = out + ((int64_t(t) * os.h + y) * os.w + x) * c.co;
        for (int co = 0; co < c.co; ++co) {
          const int g = co / cog;
          const W* wk = w + int64_t(co) * c.kt * c.kh * c.kw * cig;
          Acc acc = 0;
          for (int kt = 0; kt < c.kt; ++kt) {
            const int it = t * c.st - c.pt + kt;
            for (int ky = 0; ky < c.kh; ++ky) {
              const int iy = y * c.sh - c.ph + ky;
              for (int kx = 0; kx < c.kw; ++kx) {
                const int ix = x * c.sw - c.pw + kx;
                const W* wp = wk + ((int64_t(kt) * c.kh + ky) * c.kw + kx) * cig;
                if (it < 0 || it >= is.t || iy < 0 || iy >= is.h || ix < 0 || ix >= is.w)
                  continue;  // zero padding
                const In* ip = in + ((int64_t(it) * is.h + iy) * is.w + ix) * c.ci + g * cig;
                for (int ci = 0; ci < cig; ++ci) acc += Acc(ip[ci]) * Acc(wp[ci]);
              }
            }
          }
          o[co] = acc;
        }
      }
}

// MaxPool 1x2x2, stride 1x2x2, floor; `in` is the un-pooled shape.
template <typename T>
void MaxPool1x2x2Reference(const Shape4& in, const T* x, T* out) {
  const int oh = in.h / 2, ow = in.w / 2, c = in.c;
  for (int t = 0; t < in.t; ++t)
    for (int y = 0; y < oh; ++y)
      for (int xx = 0; xx < ow; ++xx)
        for (int k = 0; k < c; ++k) {
          auto at = [&](int dy, int dx) {
            return x[((int64_t(t) * in.h + 2 * y + dy) * in.w + 2 * xx + dx) * c + k];
          };
          T m = at(0, 0);
          if (at(0, 1) > m) m = at(0, 1);
          if (at(1, 0) > m) m = at(1, 0);
          if (at(1, 1) > m) m = at(1, 1);
          out[((int64_t(t) * oh + y) * ow + xx) * c + k] = m;
        }
}

// S1-S2: y = max(0, scale[c] * x + offset[c]).
void NormReluReference(int64_t positions, int channels, const float* x, const float* scale,
                       const float* offset, float* out);
// S3: folded BN + Heaviside: bit = polarity > 0 ? x >= thr : polarity < 0 ?
// x <= thr : thr.
void NormThresholdReference(int64_t positions, int channels, const int32_t* x,
                            const int32_t* threshold, const int8_t* polarity, uint8_t* out);
// S4-S5: BSN (positive scale) + Heaviside: bit = x > 0.
void HeavisideReference(int64_t count, const int32_t* x, uint8_t* out);

// TGAP select signal S[t][c] = AP(x)[t][c] > 0.5 m. Float (S1-S2): m is the
// maximum of AP over (t, c) of this tensor. Bits (S3+): m = 1, so
// S = 2 * count > h * w.
void TgapFloatReference(const Shape4& s, const float* x, uint8_t* select);
void TgapBitsReference(const Shape4& s, const uint8_t* x, uint8_t* select);

// MUX-OR: out = S ? I1 : Clip(x + I1), Clip = max(-1, min(1, .)); on bits the
// clip is an OR.
void MuxOrFloatReference(const Shape4& s, const float* x, const float* i1,
                         const uint8_t* select, float* out);
void MuxOrBitsReference(const Shape4& s, const uint8_t* x, const uint8_t* i1,
                        const uint8_t* select, uint8_t* out);

// Global average pooling over h x w: float means, or bit counts (S3+).
void GapFloatReference(const Shape4& s, const float* x, float* out);  // [t][c]
void GapBitsReference(const Shape4& s, const uint8_t* x, int32_t* out);

// One float LSTM step, no bias, gate order i, f, g, o:
// z = W_ih x + W_hh h; c = sigmoid(f) c + sigmoid(i) tanh(g); h = sigmoid(o) tanh(c).
void LstmStepFloatReference(int inputs, int units, const float* w_ih, const float* w_hh,
                            const float* x, float* h, float* c);
// One QLSTM step (S5), all integer. x are bit counts over `area` positions,
// weights +-1; z = W_ih x + area * W_hh h (the float pre-activation times the
// positive factor area / scale); i, f, o = z > 0; g = z >= 0 ? 1 : -1;
// c = Clip(f c + i g) in {-1, 0, 1}; h = o c.
void QlstmStepReference(int inputs, int units, int area, const int8_t* w_ih,
                        const int8_t* w_hh, const int32_t* x, int8_t* h, int8_t* c);

void DenseFloatReference(int inputs, int outputs, const float* w, const float* x, float* out);
void DenseIntReference(int inputs, int outputs, const int8_t* w, const int8_t* x,
                       int32_t* out);

}  // namespace billnet

#endif  // BILLNET_ENGINE_KERNELS_REFERENCE_H_
