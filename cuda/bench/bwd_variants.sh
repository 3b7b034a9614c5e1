#!/usr/bin/env bash
# Builds the bf16 backward kernels of several source trees or compile flags side by side
# (bwd_variant.cu, one small library each) and times them in turn against SDPA flash's
# backward, for kernel experiments on the GPU machine:
#   cuda/bench/bwd_variants.sh "new" "old@/path/to/older/cuda/src" "try -DSOME_MACRO=1" ...
# Each spec is NAME[@SRC_DIR] [nvcc flags] (SRC_DIR defaults to cuda/src); a library already in
# build/bwdv/NAME.so is reused. Prints the ptxas register / spill lines of the dense kernels
# and a TFLOP/s table (also in $OUT/bwd_variants.txt). CONFIGS=quick times fewer shapes.
set -uo pipefail
out=${OUT:-bwd-variants}; mkdir -p "$out" build/bwdv
nvcc=${NVCC:-nvcc}
args=()
for spec in "$@"; do
  read -r head flags <<< "$spec"
  name=${head%@*}; src=cuda/src; [[ $head == *@* ]] && src=${head#*@}
  [ -f build/bwdv/$name.so ] || ( $nvcc -std=c++17 --expt-relaxed-constexpr -O3 -arch=sm_90 -lineinfo -shared -Xcompiler -fPIC -Xptxas -v \
      -I "$src" -I cuda/include -I src $flags -o build/bwdv/$name.so cuda/bench/bwd_variant.cu \
      > build/bwdv/$name.log 2>&1 || { echo "BUILD FAILED $name"; tail -20 build/bwdv/$name.log; }
    true ) &
  args+=("$name=$PWD/build/bwdv/$name.so")
done
wait
for spec in "$@"; do
  read -r head flags <<< "$spec"; name=${head%@*}
  echo "$name: $(grep -A1 'flash_bwd_dense' build/bwdv/$name.log | grep -E 'spill|Used' | paste -sd' ' | sed 's/ptxas info    ://g; s/bytes //g')"
done
if [ -n "${PROFILE:-}" ]; then  # Nsight Compute on the second run of each variant and of SDPA's kernel
  ncu -k 'regex:flash_bwd_dense|flash_bwd_dq_dk_dv' --launch-skip $(( ${#args[@]} + 1 )) --launch-count $(( ${#args[@]} + 1 )) \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section LaunchStats --section Occupancy \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section InstructionStats \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio" \
    python3 cuda/bench/bwd_variants.py "${args[@]}" > "$out/ncu_bwd.txt" 2>&1
  grep -E "flash_bwd|Duration|Throughput|Stall|Warp Cycles|Issued Ipc|Registers|Achieved Occ|Executed Ipc|L1/TEX Hit|L2 Hit|One or More|No Eligible|Mem Pipes|Shared|stalled" "$out/ncu_bwd.txt" | head -150
else
  python3 cuda/bench/bwd_variants.py "${args[@]}" 2>&1 | tee "$out/bwd_variants.txt"
fi
