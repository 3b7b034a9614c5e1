// A linear layer over rows, y = x . W^T + b, in int8 (the dynamic quantization of PyTorch's
// quantize_dynamic, with the integer products on SIMD):
//   W [out][in] is quantized once per output channel c, symmetric:
//     s_w[c] = max_k |W[c][k]| / 127,  q_w[c][k] = round(W[c][k] / s_w[c])  in [-127, 127]
//   each call quantizes each row r of x the same way (s_x[r] from that row's max |x|),
//   sums q_x . q_w in int32 (exact), and writes  y[r][c] = acc * s_x[r] * s_w[c] + b[c]
//   in float32. A zero channel or row has scale 0 and gives exactly b (never NaN); a row
//   holding inf or NaN gives a NaN row, as the float layer would.
// Error per output (rounding halves of a step): |y - x . W^T - b| <=
//   s_x s_w sum_k (|q_x[k]| / 2 + |q_w[k]| / 2 + 1/4), about 1% of |y| in RMS terms on
//   random inputs (the tests check the bound; the README has the measured figures).
// Accumulators are int32: in_features is limited to kMaxInt8Depth (127 * 127 * depth
// < 2^31).
//
// Layout: weights in kPanel-column panels (as the float GEMM's), each k-pair of a panel
// holding its columns' two int8 values side by side: [pair][column][2]. Rows of x are
// quantized to int16 in groups of kTileRows, [pair][row][2], so one 32-bit splat gives a
// row's pair and one widening load gives kLanes columns' pairs: the tile's inner step is
// loads, splats and pairwise multiply-adds (i32x4.dot_i16x8_s / vpmaddwd / vpdpwssd).
#pragma once
#include <cstdint>
#include <vector>

namespace attn {

class ThreadPool;

constexpr int kMaxInt8Depth = 131072;

struct Int8Weight {
  int k = 0, n = 0;             // in_features, out_features
  std::vector<int8_t> panels;   // [n / kPanel][pairs][kPanel][2], zero-padded
  std::vector<float> scales;    // s_w, [n rounded up to kPanel], zero-padded

  int pairs() const { return (k + 1) / 2; }
  int8_t at(int out, int in) const;  // q_w[out][in]
  // Bytes it holds (the int8 panels and the scales).
  int64_t bytes() const;
};

// W [out][in], row-major. Throws AttnError("weights") past kMaxInt8Depth or on a value that
// is not finite.
Int8Weight quantize_weight_int8(int out_features, int in_features, const std::vector<float>& weight);
// W as the layer uses it: q_w[c][k] * s_w[c], [out][in].
std::vector<float> dequantize_weight(const Int8Weight& w);

// y [rows][w.n] = dequantized (q_x . q_w) + bias [w.n] (none when empty).
void project_rows_int8(const Int8Weight& w, const std::vector<float>& bias, int64_t rows, const float* x, float* y,
                       ThreadPool* pool);

// What the kernel does, in pieces, for the tests: the quantized rows of x (q_x [rows][k] in
// int16 and s_x [rows]), and the exact int32 accumulators acc [rows][w.n] = q_x . q_w.
struct QuantizedRows {
  std::vector<int16_t> values;
  std::vector<float> scales;
};
QuantizedRows quantize_rows_int8(int64_t rows, int k, const float* x);
void int8_matmul_i32(const Int8Weight& w, int64_t rows, const float* x, int32_t* acc);

}  // namespace attn
