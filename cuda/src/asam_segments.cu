// ASAM's random and clustered patterns: one flash call each, with segment ids
// (fwd_segments.h), so the kernel visits only the key tiles a query block's segment spans.
//   random     every query block's key blocks are copied after one another into a gathered
//              K / V ([batch, blocks * count * block_size, heads, d]); query block qb has
//              segment 2 qb and its keys too, the padding after a short last block 2 qb + 1.
//              Queries stay in place. A 128-query tile covers a few blocks, so the kernel
//              walks their gathered keys and drops other blocks' keys per element.
//   clustered  queries and keys get their nearest centroid, a stable radix sort (CUB) orders
//              each (batch, head) by cluster, the sorted keys (bh * clusters + cluster) are the
//              segment ids, and the sorted rows are gathered, attended, and scattered back.
#include <cub/device/device_radix_sort.cuh>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "asam/random_blocks.h"
#include "asam_segments.h"
#include "attn_cuda/flash.h"
#include "cuda_check.h"
#include "grid_size.h"
#include "fwd_segments.h"
#include "mma_sm80.cuh"
#include "stream_buffer.h"

namespace attn::cuda::detail {
namespace {

// Rows of a [batch, rows, heads, dim] tensor, each optionally renumbered: copy row x of
// (b, h) is the tensor's row index[b * index_batch_stride + h * rows + x] (x without a
// table; a negative index: zeros on read, skipped on write).
struct RowMap {
  void* data;
  int64_t stride[4];  // elements: batch, row, head, column
  const int32_t* index = nullptr;
  int64_t index_batch_stride = 0;

  __device__ __forceinline__ int64_t row(int64_t b, int64_t h, int64_t x, int64_t rows) const {
    return index == nullptr ? x : index[b * index_batch_stride + h * rows + x];
  }
};

RowMap row_map(const TensorView& t) {
  RowMap m{t.data, {t.stride[0], t.stride[1], t.stride[2], t.rank > 3 ? t.stride[3] : 1}};
  return m;
}
RowMap row_map(const TensorView& t, const int32_t* index, int64_t index_batch_stride) {
  RowMap m = row_map(t);
  m.index = index;
  m.index_batch_stride = index_batch_stride;
  return m;
}

// dst row (b, dst.row(x), h) <- src row (b, src.row(x), h) for x < rows, kChunk elements per
// thread: 16-byte vectors where both tensors' rows are contiguous and aligned (vector_ok),
// single elements else.
template <typename T, int kChunk>
__global__ void copy_rows_kernel(RowMap src, RowMap dst, int batch, int64_t rows, int heads, int dim) {
  using Chunk = std::conditional_t<kChunk == 1, T, uint4>;
  const int chunks = dim / kChunk;
  const int64_t t = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (t >= int64_t{batch} * rows * heads * chunks) return;
  const int64_t w = t / chunks, c = (t % chunks) * kChunk;
  const int64_t h = w % heads, x = (w / heads) % rows, b = w / (heads * rows);
  const int64_t si = src.row(b, h, x, rows), di = dst.row(b, h, x, rows);
  if (di < 0) return;
  const T* s = static_cast<const T*>(src.data) + b * src.stride[0] + si * src.stride[1] + h * src.stride[2] + c * src.stride[3];
  T* d = static_cast<T*>(dst.data) + b * dst.stride[0] + di * dst.stride[1] + h * dst.stride[2] + c * dst.stride[3];
  if constexpr (kChunk == 1) {
    *d = si < 0 ? T(0.0f) : *s;
  } else {
    *reinterpret_cast<Chunk*>(d) = si < 0 ? make_uint4(0, 0, 0, 0) : *reinterpret_cast<const Chunk*>(s);
  }
}

bool vector_ok(const RowMap& m, int64_t dim, int64_t bytes) {
  const int64_t per_vector = 16 / bytes;
  return m.stride[3] == 1 && dim % per_vector == 0 && m.stride[0] % per_vector == 0 && m.stride[1] % per_vector == 0 &&
         m.stride[2] % per_vector == 0 && reinterpret_cast<uintptr_t>(m.data) % 16 == 0;
}

template <typename T>
void copy_rows(const RowMap& src, const RowMap& dst, int64_t batch, int64_t rows, int64_t heads, int64_t dim,
               cudaStream_t stream) {
  const int64_t items = batch * rows * heads;
  if (vector_ok(src, dim, sizeof(T)) && vector_ok(dst, dim, sizeof(T))) {
    constexpr int kChunk = 16 / sizeof(T);
    copy_rows_kernel<T, kChunk><<<blocks_for(items * dim / kChunk), 256, 0, stream>>>(src, dst, int(batch), rows,
                                                                                      int(heads), int(dim));
  } else {
    copy_rows_kernel<T, 1><<<blocks_for(items * dim), 256, 0, stream>>>(src, dst, int(batch), rows, int(heads), int(dim));
  }
  check_cuda(cudaGetLastError(), "asam copy rows");
}

void copy_rows_of(DType dtype, const RowMap& src, const RowMap& dst, int64_t batch, int64_t rows, int64_t heads,
                  int64_t dim, cudaStream_t stream) {
  if (dtype == DType::kFloat16) copy_rows<__half>(src, dst, batch, rows, heads, dim, stream);
  else copy_rows<__nv_bfloat16>(src, dst, batch, rows, heads, dim, stream);
}

// A contiguous [batch, rows, heads, dim] scratch tensor of dtype.
struct Scratch {
  StreamBuffer buffer;
  TensorView view;
  Scratch(DType dtype, int64_t batch, int64_t rows, int64_t heads, int64_t dim, cudaStream_t stream)
      : buffer(size_t(dtype_bytes(dtype)) * batch * rows * heads * dim, stream),
        view(contiguous_view(buffer.get(), dtype, {batch, rows, heads, dim})) {}
};

// ---- random -------------------------------------------------------------------------

// The gathered keys' layout: slot x of head h is key block lists[h][qb][l / block] row
// l % block (qb = x / (count * block), l = x % (count * block)), or -1 past the sequence;
// its segment 2 qb (2 qb + 1 for padding). Query i's segment is 2 (i / block).
__global__ void random_layout_kernel(const int32_t* lists, int heads, int blocks, int count, int block, int64_t n,
                                     int32_t* key_index, int32_t* k_segment, int32_t* q_segment) {
  const int64_t slots = int64_t{blocks} * count * block;
  const int64_t t = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (t < heads * slots) {
    const int64_t h = t / slots, x = t % slots, qb = x / (int64_t{count} * block), l = x % (int64_t{count} * block);
    const int64_t key = int64_t{lists[(h * blocks + qb) * count + l / block]} * block + l % block;
    key_index[t] = key < n ? static_cast<int32_t>(key) : -1;
    k_segment[t] = static_cast<int32_t>(2 * qb + (key < n ? 0 : 1));
  }
  if (t < heads * n) q_segment[t] = static_cast<int32_t>(2 * ((t % n) / block));
}

// ---- clustered ----------------------------------------------------------------------

// Row (b, i, h) of x -> sort key (b * heads + h) * clusters + its nearest centroid (largest
// float32 dot product, the lowest index on ties) and value i. A block scores kAssignRows rows
// of one (batch, head) against 32 clusters at a time: the rows and the clusters (transposed,
// lane = cluster) in shared memory, each warp kRowsPerWarp rows, so every centroid value
// read feeds kRowsPerWarp FMAs and every read is a broadcast or conflict-free.
constexpr int kAssignWarps = 8, kRowsPerWarp = 8, kAssignRows = kAssignWarps * kRowsPerWarp;
template <typename T, int kDim>
__global__ void __launch_bounds__(kAssignWarps * 32) assign_clusters_kernel(RowMap x, const float* centroids, int64_t n,
                                                                            int heads, int clusters, uint32_t* keys,
                                                                            int32_t* rows) {
  constexpr int dim = kDim;
  extern __shared__ float smem[];
  float* x_rows = smem;                          // [kAssignRows][dim]
  float* cen_t = smem + kAssignRows * dim;       // [dim][33]: the pad keeps both its stores and loads conflict-free
  const int64_t chunks = (n + kAssignRows - 1) / kAssignRows, bh = blockIdx.x / chunks;
  const int64_t b = bh / heads, h = bh % heads, i0 = (blockIdx.x % chunks) * kAssignRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  // The rows in 16-byte chunks (rows contiguous and 16-byte aligned: asam_forward checks),
  // every load issued before the first is used: one element per load, in a loop, had the
  // block wait a memory latency per element (40% of the kernel's stalls, 0.55 ms).
  const T* x_bh = static_cast<const T*>(x.data) + b * x.stride[0] + h * x.stride[2];
  constexpr int kChunksPerRow = kDim / 8, kPasses = kAssignRows * kChunksPerRow / (kAssignWarps * 32);
  uint4 raw[kPasses];
#pragma unroll
  for (int pass = 0; pass < kPasses; ++pass) {
    const int chunk = threadIdx.x + pass * kAssignWarps * 32, r = chunk / kChunksPerRow;
    raw[pass] = i0 + r < n ? *reinterpret_cast<const uint4*>(x_bh + (i0 + r) * x.stride[1] + (chunk % kChunksPerRow) * 8)
                           : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int pass = 0; pass < kPasses; ++pass) {
    const int chunk = threadIdx.x + pass * kAssignWarps * 32;
    const T* v = reinterpret_cast<const T*>(&raw[pass]);
    float4* dst = reinterpret_cast<float4*>(x_rows + chunk * 8);
    dst[0] = make_float4(to_float(v[0]), to_float(v[1]), to_float(v[2]), to_float(v[3]));
    dst[1] = make_float4(to_float(v[4]), to_float(v[5]), to_float(v[6]), to_float(v[7]));
  }
  float best[kRowsPerWarp];
  int best_c[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) best[r] = -INFINITY, best_c[r] = lane;  // past the last cluster: loses ties
  const float* my_rows = x_rows + warp * kRowsPerWarp * dim;
  for (int c0 = 0; c0 < clusters; c0 += 32) {
    __syncthreads();  // the previous clusters' scores are done (and the rows stored)
    for (int t = threadIdx.x; t < 32 * dim; t += blockDim.x) {  // coalesced reads along each centroid
      const int c = t / dim, e = t % dim;
      cen_t[e * 33 + c] = c0 + c < clusters ? centroids[(h * clusters + c0 + c) * int64_t{dim} + e] : 0.0f;
    }
    __syncthreads();
    float dot[kRowsPerWarp] = {};
#pragma unroll 4
    for (int e = 0; e < dim; e += 4) {
      float cv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) cv[u] = cen_t[(e + u) * 33 + lane];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float4 xv = *reinterpret_cast<const float4*>(my_rows + r * dim + e);
        dot[r] = fmaf(xv.x, cv[0], dot[r]);
        dot[r] = fmaf(xv.y, cv[1], dot[r]);
        dot[r] = fmaf(xv.z, cv[2], dot[r]);
        dot[r] = fmaf(xv.w, cv[3], dot[r]);
      }
    }
    if (c0 + lane < clusters) {
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r)
        if (dot[r] > best[r]) best[r] = dot[r], best_c[r] = c0 + lane;
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, best[r], o);
      const int other_c = __shfl_xor_sync(0xffffffffu, best_c[r], o);
      if (other > best[r] || (other == best[r] && other_c < best_c[r])) best[r] = other, best_c[r] = other_c;
    }
    // Rows are numbered (b, h, i) so that one sort orders every (batch, head) at once.
    const int64_t i = i0 + warp * kRowsPerWarp + r;
    if (lane == 0 && i < n) {
      keys[bh * n + i] = static_cast<uint32_t>(bh * clusters + best_c[r]);
      rows[bh * n + i] = static_cast<int32_t>(i);
    }
  }
}

// x's rows sorted by cluster per (batch, head): segment ids and the original row of each
// sorted position, both [batch][heads][n].
struct ClusterOrder {
  StreamBuffer segment, row;
  ClusterOrder(const TensorView& x, const TensorView& centroids, cudaStream_t stream)
      : segment(sizeof(int32_t) * x.shape[0] * x.shape[1] * x.shape[2], stream),
        row(sizeof(int32_t) * x.shape[0] * x.shape[1] * x.shape[2], stream) {
    const int64_t batch = x.shape[0], n = x.shape[1], heads = x.shape[2], dim = x.shape[3];
    const int64_t clusters = centroids.shape[1], items = batch * n * heads;
    StreamBuffer keys(sizeof(uint32_t) * items, stream), rows(sizeof(int32_t) * items, stream);
    const size_t smem = sizeof(float) * (kAssignRows + 33) * dim;  // 49.7 KB at head dim 128
    const unsigned grid = static_cast<unsigned>((n + kAssignRows - 1) / kAssignRows * batch * heads);
    const auto assign = [&](auto* element, auto head_dim) {
      using T = std::remove_pointer_t<decltype(element)>;
      const auto kernel = assign_clusters_kernel<T, decltype(head_dim)::value>;
      check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
                 "asam cluster assignment");
      kernel<<<grid, kAssignWarps * 32, smem, stream>>>(
          row_map(x), static_cast<const float*>(centroids.data), n, int(heads), int(clusters), keys.as<uint32_t>(),
          rows.as<int32_t>());
    };
    const auto assign_dim = [&](auto* element) {  // head dims 64 and 128 (asam_forward checks)
      if (dim == 64) assign(element, std::integral_constant<int, 64>{});
      else assign(element, std::integral_constant<int, 128>{});
    };
    if (x.dtype == DType::kFloat16) assign_dim(static_cast<__half*>(nullptr));
    else assign_dim(static_cast<__nv_bfloat16*>(nullptr));
    check_cuda(cudaGetLastError(), "asam cluster assignment");
    // Keys below batch * heads * clusters: sort only their bits (stable, so each cluster's
    // rows stay in sequence order).
    int end_bit = 1;
    while (end_bit < 32 && (uint64_t{1} << end_bit) < uint64_t(batch * heads * clusters)) ++end_bit;
    size_t temp_bytes = 0;
    uint32_t* sorted_keys = segment.as<uint32_t>();
    check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys.as<uint32_t>(), sorted_keys,
                                               rows.as<int32_t>(), row.as<int32_t>(), items, 0, end_bit, stream),
               "asam cluster sort");
    StreamBuffer temp(temp_bytes, stream);
    check_cuda(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, keys.as<uint32_t>(), sorted_keys,
                                               rows.as<int32_t>(), row.as<int32_t>(), items, 0, end_bit, stream),
               "asam cluster sort");
  }
};

}  // namespace

FlashForwardArgs asam_flash_args(const AsamForwardArgs& a) {
  FlashForwardArgs f;
  f.q = a.q, f.k = a.k, f.v = a.v, f.out = a.out, f.lse = a.lse;
  f.scale = a.scale;
  f.stream = a.stream;
  return f;
}

void asam_random_forward(const AsamForwardArgs& a) {
  const int64_t batch = a.q.shape[0], n = a.q.shape[1], heads = a.q.shape[2], block = a.block_size;
  const int blocks = static_cast<int>((n + block - 1) / block);
  const int count = attn::asam::random_blocks_per_query_block(blocks, a.window_size, block);
  std::vector<int32_t> lists(size_t(heads) * blocks * count), pool;
  for (int64_t h = 0; h < heads; ++h)
    for (int qb = 0; qb < blocks; ++qb)
      attn::asam::random_key_blocks(a.seed, h, qb, blocks, count, pool, lists.data() + (h * blocks + qb) * count);
  const cudaStream_t stream = a.stream;
  StreamBuffer lists_gpu(sizeof(int32_t) * lists.size(), stream);
  // From pageable memory: returns once `lists` has been staged, so it may go out of scope.
  check_cuda(cudaMemcpyAsync(lists_gpu.get(), lists.data(), sizeof(int32_t) * lists.size(), cudaMemcpyHostToDevice,
                             stream),
             "asam random lists");

  const int64_t slots = int64_t{blocks} * count * block;
  StreamBuffer key_index(sizeof(int32_t) * heads * slots, stream), k_segment(sizeof(int32_t) * heads * slots, stream),
      q_segment(sizeof(int32_t) * heads * n, stream);
  random_layout_kernel<<<blocks_for(heads * std::max(slots, n)), 256, 0, stream>>>(
      lists_gpu.as<int32_t>(), int(heads), blocks, count, int(block), n, key_index.as<int32_t>(),
      k_segment.as<int32_t>(), q_segment.as<int32_t>());
  check_cuda(cudaGetLastError(), "asam random layout");

  Scratch k(a.k.dtype, batch, slots, heads, a.k.shape[3], stream), v(a.v.dtype, batch, slots, heads, a.v.shape[3], stream);
  copy_rows_of(a.k.dtype, row_map(a.k, key_index.as<int32_t>(), 0), row_map(k.view), batch, slots, heads, a.k.shape[3],
               stream);
  copy_rows_of(a.v.dtype, row_map(a.v, key_index.as<int32_t>(), 0), row_map(v.view), batch, slots, heads, a.v.shape[3],
               stream);
  FlashForwardArgs f = asam_flash_args(a);
  f.k = k.view, f.v = v.view;
  flash_forward_segmented(f, SegmentIds{q_segment.as<int32_t>(), k_segment.as<int32_t>(), 0, 0});
}

void asam_clustered_forward(const AsamForwardArgs& a) {
  validate_flash_forward(asam_flash_args(a));  // contiguous, aligned rows, before the clustering reads them
  const int64_t batch = a.q.shape[0], n = a.q.shape[1], heads = a.q.shape[2], dim = a.q.shape[3], dv = a.v.shape[3];
  const cudaStream_t stream = a.stream;
  const ClusterOrder q_order(a.q, a.centroids, stream), k_order(a.k, a.centroids, stream);
  const int64_t order_batch_stride = heads * n;
  Scratch q(a.q.dtype, batch, n, heads, dim, stream), k(a.k.dtype, batch, n, heads, dim, stream),
      v(a.v.dtype, batch, n, heads, dv, stream), out(a.out.dtype, batch, n, heads, dv, stream);
  const int32_t* q_rows = q_order.row.as<int32_t>();
  const int32_t* k_rows = k_order.row.as<int32_t>();
  copy_rows_of(a.q.dtype, row_map(a.q, q_rows, order_batch_stride), row_map(q.view), batch, n, heads, dim, stream);
  copy_rows_of(a.k.dtype, row_map(a.k, k_rows, order_batch_stride), row_map(k.view), batch, n, heads, dim, stream);
  copy_rows_of(a.v.dtype, row_map(a.v, k_rows, order_batch_stride), row_map(v.view), batch, n, heads, dv, stream);

  StreamBuffer lse(a.lse.defined() ? sizeof(float) * batch * heads * n : 0, stream);
  FlashForwardArgs f = asam_flash_args(a);
  f.q = q.view, f.k = k.view, f.v = v.view, f.out = out.view;
  if (a.lse.defined()) f.lse = contiguous_view(lse.get(), DType::kFloat32, {batch, heads, n});
  flash_forward_segmented(f, SegmentIds{q_order.segment.as<int32_t>(), k_order.segment.as<int32_t>(),
                                        order_batch_stride, order_batch_stride});

  // Back to the queries' rows.
  copy_rows_of(a.out.dtype, row_map(out.view), row_map(a.out, q_rows, order_batch_stride), batch, n, heads, dv, stream);
  if (a.lse.defined()) {  // [batch, heads, n] as rows (b, i, h) of one float
    const RowMap src{lse.get(), {heads * n, 1, n, 1}};
    RowMap dst{a.lse.data, {a.lse.stride[0], a.lse.stride[2], a.lse.stride[1], 1}, q_rows, order_batch_stride};
    copy_rows<float>(src, dst, batch, n, heads, 1, stream);
  }
}

}  // namespace attn::cuda::detail
