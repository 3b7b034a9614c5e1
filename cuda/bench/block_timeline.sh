#!/usr/bin/env bash
# Block timelines of the Hopper kernels on the GPU machine: builds cuda/bench/block_timeline.cu
# with the kernels' ATTN_TIMELINE marks compiled in, runs each configuration (kind, head dim,
# n, causal) and summarises where the blocks' time goes (block_timeline.py). Files go to $OUT.
#   cuda/bench/block_timeline.sh "fwd 128 4096 1" "bwd 64 1024 1" ...
# (The globaltimer ticks every 0.26 us here: read medians and totals, not single blocks.)
set -euo pipefail
out=${OUT:-block-timeline}; bin=build/block_timeline
mkdir -p "$out" build
nvcc -std=c++17 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90a,code=sm_90a -DATTN_BLOCK_TIMELINE \
  -I cuda/src -I cuda/include -I src -o $bin cuda/bench/block_timeline.cu
[ $# -gt 0 ] || set -- "fwd 128 4096 0" "fwd 128 4096 1" "bwd 128 1024 1" "bwd 64 4096 1"
files=()
for config in "$@"; do
  read -r kind d n causal <<< "$config"
  file="$out/${kind}_d${d}_n${n}_c${causal}.bin"
  $bin "$kind" "$d" "$n" "$causal" "$file"
  files+=("$file")
done
python3 cuda/bench/block_timeline.py "${files[@]}"
