#include "asam/asam_config.h"

#include <cstddef>
#include <limits>

#include "asam/sparse_attention.h"
#include "runtime/errors.h"

namespace attn::asam {

bool is_asam_pattern_type(const std::string& name) { return name == "adaptive" || is_pattern_name(name); }

ASAMConfig validate_asam_config(ASAMConfig c) {
  require_positive("dim", c.dim);
  require_positive("numHeads", c.num_heads);
  if (c.dim_head < 0) {
    throw_range("dimHead", "must be a positive integer, or 0 for dim / numHeads, got " + std::to_string(c.dim_head));
  }
  if (c.dim_head == 0) {
    if (c.dim % c.num_heads != 0) {
      throw_range("numHeads", "must divide dim (" + std::to_string(c.dim) + ") when dimHead is 0 (automatic), got " +
                                  std::to_string(c.num_heads));
    }
    c.dim_head = c.dim / c.num_heads;
  }
  if (int64_t{c.num_heads} * c.dim_head > std::numeric_limits<int>::max()) {
    throw_range("dimHead", "numHeads * dimHead is too large");
  }
  if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) throw_range("dropout", "must be in [0, 1)");
  if (!is_asam_pattern_type(c.pattern_type)) {
    throw_range("patternType",
                "must be local, strided, random, clustered, hierarchical or adaptive, got '" + c.pattern_type + "'");
  }
  require_positive("windowSize", c.window_size);
  require_positive("stride", c.stride);
  require_positive("numClusters", c.num_clusters);
  require_positive("gateHiddenDim", c.gate_hidden_dim);
  if (!(c.confidence_threshold >= 0.0f && c.confidence_threshold <= 1.0f)) {
    throw_range("confidenceThreshold", "must be in [0, 1], got " + std::to_string(c.confidence_threshold));
  }
  if (c.block_size < kBlockSizeQuantum || c.block_size > kMaxBlockSize || c.block_size % kBlockSizeQuantum != 0) {
    throw_range("blockSize", "must be a multiple of " + std::to_string(kBlockSizeQuantum) + " in [" +
                                 std::to_string(kBlockSizeQuantum) + ", " + std::to_string(kMaxBlockSize) + "], got " +
                                 std::to_string(c.block_size));
  }
  // The projections (Q, K, V in, one out: 4 * dim * inner floats) and the gate's first layer
  // must be addressable on this platform (32-bit under WebAssembly).
  // Each named after the option that sets its size; the centroids are [numHeads][numClusters][dimHead].
  const double limit = double(std::numeric_limits<size_t>::max()) / 4 / sizeof(float);
  const double projections = 4.0 * c.dim * c.inner_dim(), gate = double(c.dim) * c.gate_hidden_dim;
  const double centroids = double(c.inner_dim()) * c.num_clusters;
  if (projections > limit) throw_range(c.dim >= c.inner_dim() ? "dim" : "dimHead", "the weights are too large for this platform's memory");
  if (gate > limit) throw_range("gateHiddenDim", "the gate's weights are too large for this platform's memory");
  if (centroids > limit) throw_range("numClusters", "the centroids are too large for this platform's memory");
  if (projections + gate + centroids > limit) throw_range("dim", "the weights are too large for this platform's memory");
  return c;
}

}  // namespace attn::asam
