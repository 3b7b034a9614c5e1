// Launcher of the dynamic-mask pre-pass (mask_prepass.cu): per-query keep-window
// thresholds and the map of key tiles that hold attended pairs.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "fwd_params.h"

namespace attn::cuda::detail {


// threshold: [batch][heads_kv][seq_q] floats (written only when keep_window applies);
// tile_active: [batch][heads_kv][q_tiles][k_tiles] bytes; kept_bits (optional, for the Hopper
// forward): [batch][heads_kv][seq_q][kept_bits_row_bytes(seq_k)] bytes, bit e of byte c set
// where key 8c + e is kept (a candidate under the mask and the causal rule, and not under
// the row's threshold); the rows' padding is left as it was.
cudaError_t launch_mask_prepass(const FwdParams& p, int64_t keep_window, float* threshold,
                                uint8_t* tile_active, uint8_t* kept_bits, cudaStream_t stream);

}  // namespace attn::cuda::detail
