#include "kernels/reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace billnet {

void NormReluReference(int64_t positions, int channels, const float* x, const float* scale,
                       const float* offset, float* out) {
  for (int64_t p = 0; p < positions; ++p)
    for (int c = 0; c < channels; ++c) {
      const float y = scale[c] * x[p * channels + c] + offset[c];
      out[p * channels + c] = y > 0.f ? y : 0.f;
    }
}

void NormThresholdReference(int64_t positions, int channels, const int32_t* x,
                            const int32_t* threshold, const int8_t* polarity, uint8_t* out) {
  for (int64_t p = 0; p < positions; ++p)
    for (int c = 0; c < channels; ++c) {
      const int32_t v = x[p * channels + c];
      uint8_t bit;
      if (polarity[c] > 0) bit = v >= threshold[c];
      else if (polarity[c] < 0) bit = v <= threshold[c];
      else bit = threshold[c] != 0;
      out[p * channels + c] = bit;
    }
}

void HeavisideReference(int64_t count, const int32_t* x, uint8_t* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = x[i] > 0;
}

void TgapFloatReference(const Shape4& s, const float* x, uint8_t* select) {
  const int area = s.h * s.w;
  std::vector<float> ap(int64_t(s.t) * s.c, 0.f);
  for (int t = 0; t < s.t; ++t)
    for (int c = 0; c < s.c; ++c) {
      float sum = 0.f;
      for (int p = 0; p < area; ++p) sum += x[(int64_t(t) * area + p) * s.c + c];
      ap[int64_t(t) * s.c + c] = sum / float(area);
    }
  float m = 0.f;
  for (float v : ap) m = std::max(m, v);
  for (size_t i = 0; i < ap.size(); ++i) select[i] = ap[i] > 0.5f * m;
}

void TgapBitsReference(const Shape4& s, const uint8_t* x, uint8_t* select) {
  const int area = s.h * s.w;
  for (int t = 0; t < s.t; ++t)
    for (int c = 0; c < s.c; ++c) {
      int count = 0;
      for (int p = 0; p < area; ++p) count += x[(int64_t(t) * area + p) * s.c + c];
      select[int64_t(t) * s.c + c] = 2 * count > area;
    }
}

void MuxOrFloatReference(const Shape4& s, const float* x, const float* i1,
                         const uint8_t* select, float* out) {
  const int64_t area = int64_t(s.h) * s.w;
  for (int t = 0; t < s.t; ++t)
    for (int64_t p = 0; p < area; ++p)
      for (int c = 0; c < s.c; ++c) {
        const int64_t i = (t * area + p) * s.c + c;
        out[i] = select[int64_t(t) * s.c + c] ? i1[i] : std::clamp(x[i] + i1[i], -1.f, 1.f);
      }
}

void MuxOrBitsReference(const Shape4& s, const uint8_t* x, const uint8_t* i1,
                        const uint8_t* select, uint8_t* out) {
  const int64_t area = int64_t(s.h) * s.w;
  for (int t = 0; t < s.t; ++t)
    for (int64_t p = 0; p < area; ++p)
      for (int c = 0; c < s.c; ++c) {
        const int64_t i = (t * area + p) * s.c + c;
        out[i] = select[int64_t(t) * s.c + c] ? i1[i] : uint8_t(x[i] | i1[i]);
      }
}

void GapFloatReference(const Shape4& s, const float* x, float* out) {
  const int area = s.h * s.w;
  for (int t = 0; t < s.t; ++t)
    for (int c = 0; c < s.c; ++c) {
      float sum = 0.f;
      for (int p = 0; p < area; ++p) sum += x[(int64_t(t) * area + p) * s.c + c];
      out[int64_t(t) * s.c + c] = sum / float(area);
    }
}

void GapBitsReference(const Shape4& s, const uint8_t* x, int32_t* out) {
  const int area = s.h * s.w;
  for (int t = 0; t < s.t; ++t)
    for (int c = 0; c < s.c; ++c) {
      int32_t count = 0;
      for (int p = 0; p < area; ++p) count += x[(int64_t(t) * area + p) * s.c + c];
      out[int64_t(t) * s.c + c] = count;
    }
}

namespace {
inline float Sigmoid(float z) { return 1.f / (1.f + std::exp(-z)); }
}  // namespace

void LstmStepFloatReference(int inputs, int units, const float* w_ih, const float* w_hh,
                            const float* x, float* h, float* c) {
  std::vector<float> z(4 * int64_t(units));
  for (int r = 0; r < 4 * units; ++r) {
    float acc = 0.f;
    const float* wi = w_ih + int64_t(r) * inputs;
    for (int j = 0; j < inputs; ++j) acc += wi[j] * x[j];
    const float* wh = w_hh + int64_t(r) * units;
    for (int k = 0; k < units; ++k) acc += wh[k] * h[k];
    z[r] = acc;
  }
  for (int k = 0; k < units; ++k) {
    const float i = Sigmoid(z[k]), f = Sigmoid(z[units + k]);
    const float g = std::tanh(z[2 * units + k]), o = Sigmoid(z[3 * units + k]);
    c[k] = f * c[k] + i * g;
    h[k] = o * std::tanh(c[k]);
  }
}

void QlstmStepReference(int inputs, int units, int area, const int8_t* w_ih,
                        const int8_t* w_hh, const int32_t* x, int8_t* h, int8_t* c) {
  std::vector<int64_t> z(4 * int64_t(units));
  for (int r = 0; r < 4 * units; ++r) {
    int64_t zi = 0, zh = 0;
    const int8_t* wi = w_ih + int64_t(r) * inputs;
    for (int j = 0; j < inputs; ++j) zi += int64_t(wi[j]) * x[j];
    const int8_t* wh = w_hh + int64_t(r) * units;
    for (int k = 0; k < units; ++k) zh += int64_t(wh[k]) * h[k];
    z[r] = zi + int64_t(area) * zh;
  }
  for (int k = 0; k < units; ++k) {
    const int i = z[k] > 0, f = z[units + k] > 0, o = z[3 * units + k] > 0;
    const int g = z[2 * units + k] >= 0 ? 1 : -1;
    const int cn = std::clamp(f * c[k] + i * g, -1, 1);
    c[k] = int8_t(cn);
    h[k] = int8_t(o * cn);
  }
}

void DenseFloatReference(int inputs, int outputs, const float* w, const float* x, float* out) {
  for (int o = 0; o < outputs; ++o) {
    float acc = 0.f;
    for (int j = 0; j < inputs; ++j) acc += w[int64_t(o) * inputs + j] * x[j];
    out[o] = acc;
  }
}

void DenseIntReference(int inputs, int outputs, const int8_t* w, const int8_t* x,
                       int32_t* out) {
  for (int o = 0; o < outputs; ++o) {
    int32_t acc = 0;
    for (int j = 0; j < inputs; ++j) acc += int32_t(w[int64_t(o) * inputs + j]) * x[j];
    out[o] = acc;
  }
}

}  // namespace billnet
