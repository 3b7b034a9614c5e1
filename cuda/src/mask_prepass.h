// Launcher of the dynamic-mask pre-pass (mask_prepass.cu): per-query keep-window
// thresholds and the map of key tiles that hold attended pairs.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "fwd_params.h"

namespace attn::cuda::detail {


// threshold: [batch][heads_kv][seq_q] floats (written only when keep_window applies);
// tile_active: [batch][heads_kv][q_tiles][k_tiles] bytes.
cudaError_t launch_mask_prepass(const FwdParams& p, int64_t keep_window, float* threshold,
                                uint8_t* tile_active, cudaStream_t stream);

}  // namespace attn::cuda::detail
