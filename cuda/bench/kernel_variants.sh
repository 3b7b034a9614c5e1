#!/usr/bin/env bash
# Builds the dense bf16 forward or backward kernels of several source trees or compile flags
# side by side (fwd_variant.cu / bwd_variant.cu, one small library each) and times them in
# turn against PyTorch SDPA's flash backend (fwd_variants.py / bwd_variants.py), for kernel
# experiments on the GPU machine:
#   cuda/bench/kernel_variants.sh fwd|bwd "new" "old@/path/to/older/cuda/src" "try -DSOME_MACRO=1" ...
# Each spec is NAME[@SRC_DIR] [nvcc flags] (SRC_DIR defaults to cuda/src); a library already in
# build/<kind>v/NAME.so is reused (build them on a CPU machine and carry them). Prints the
# ptxas register / spill lines of the kernels and a TFLOP/s table (also in
# $OUT/<kind>_variants.txt). bwd only: CONFIGS=quick times fewer shapes; PROFILE=D,N,CAUSAL runs
# Nsight Compute on each variant and on SDPA's kernel instead.
set -uo pipefail
kind=${1:?usage: kernel_variants.sh fwd|bwd SPEC...}; shift
case $kind in
  fwd) kernels='flash_fwd_kernel' ;;
  bwd) kernels='flash_bwd_dense' ;;
  *) echo "kind must be fwd or bwd, got $kind" >&2; exit 2 ;;
esac
out=${OUT:-$kind-variants}; libs=build/${kind}v; mkdir -p "$out" "$libs"
nvcc=${NVCC:-nvcc}
args=()
for spec in "$@"; do
  read -r head flags <<< "$spec"
  name=${head%@*}; src=cuda/src; [[ $head == *@* ]] && src=${head#*@}
  [ -f $libs/$name.so ] || ( $nvcc -std=c++17 --expt-relaxed-constexpr -O3 -arch=sm_90 -lineinfo -shared -Xcompiler -fPIC -Xptxas -v \
      -I "$src" -I cuda/include -I src $flags -o $libs/$name.so cuda/bench/${kind}_variant.cu \
      > $libs/$name.log 2>&1 || { echo "BUILD FAILED $name"; tail -20 $libs/$name.log; }
    true ) &
  args+=("$name=$PWD/$libs/$name.so")
done
wait
for spec in "$@"; do
  read -r head flags <<< "$spec"; name=${head%@*}
  echo "$name: $(grep -A1 "$kernels" $libs/$name.log | grep -E 'spill|Used' | paste -sd' ' | sed 's/ptxas info    ://g; s/bytes //g')"
done
if [ "$kind" = bwd ] && [ -n "${PROFILE:-}" ]; then  # the second run of each variant and of SDPA's kernel
  ncu -k 'regex:flash_bwd_dense|flash_bwd_dq_dk_dv' --launch-skip $(( ${#args[@]} + 1 )) --launch-count $(( ${#args[@]} + 1 )) \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section LaunchStats --section Occupancy \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section InstructionStats \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio" \
    python3 cuda/bench/bwd_variants.py "${args[@]}" > "$out/ncu_bwd.txt" 2>&1
  grep -E "flash_bwd|Duration|Throughput|Stall|Warp Cycles|Issued Ipc|Registers|Achieved Occ|Executed Ipc|L1/TEX Hit|L2 Hit|One or More|No Eligible|Mem Pipes|Shared|stalled" "$out/ncu_bwd.txt" | head -150
else
  python3 cuda/bench/${kind}_variants.py "${args[@]}" 2>&1 | tee "$out/${kind}_variants.txt"
fi
