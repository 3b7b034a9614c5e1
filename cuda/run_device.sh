#!/usr/bin/env bash
# Builds the CUDA backend and runs its tests and benchmark on a GPU machine (the lent H100:
# see README "CUDA backend"). Usage: cuda/run_device.sh [tests|bench|all] ; logs and JSON go
# to $OUT (or ./cuda-results). GoogleTest comes from .device-deps/googletest (its sources,
# copied from Debian's /usr/src/googletest) when the machine has no package.
set -uo pipefail
what=${1:-all}
out=${OUT:-cuda-results}
mkdir -p "$out"
build=build/cuda-device
gtest_args=()
[ -d .device-deps/googletest ] && gtest_args=(-DATTN_GTEST_SOURCE="$PWD/.device-deps/googletest")
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B $build -DATTN_CUDA=ON -DATTN_BUILD_TESTS=ON "${gtest_args[@]}" > "$out/cmake.log" 2>&1 || { cat "$out/cmake.log"; exit 1; }
cmake --build $build -j"$(nproc)" --target attn_cuda_tests attn_cuda_c > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export ATTN_CUDA_LIB=$PWD/$build/cuda/libattn_cuda_c.so
declare -A result
if [ "$what" != bench ]; then
  $build/cuda/attn_cuda_tests > "$out/gtest.log" 2>&1; result[gtest]=$?
  grep -E "^\[  (PASSED|FAILED) |Failure|error:|rel_l2|Expected|Which is" "$out/gtest.log" | head -40
  python3 cuda/tests/test_vs_torch.py > "$out/torch_tests.log" 2>&1; result[torch]=$?
  grep -E "FAIL|failures" "$out/torch_tests.log" | head -30
  python3 cuda/tests/test_backward_vs_torch.py > "$out/torch_bwd_tests.log" 2>&1; result[torch_bwd]=$?
  grep -E "FAIL|failures|Error" "$out/torch_bwd_tests.log" | head -30
  python3 cuda/tests/test_layers_vs_torch.py > "$out/torch_layers_tests.log" 2>&1; result[torch_layers]=$?
  grep -E "FAIL|failures|Error" "$out/torch_layers_tests.log" | head -30
  compute-sanitizer --tool memcheck --error-exitcode 9 $build/cuda/attn_cuda_tests \
    --gtest_filter='*SparseActive*:*Refuses*:*MultiQuery*:*DtypesHeadDimsCausalOddSizes*:*SlidingWindow*' > "$out/memcheck.log" 2>&1; result[memcheck]=$?
  tail -3 "$out/memcheck.log"
  compute-sanitizer --tool racecheck --error-exitcode 9 $build/cuda/attn_cuda_tests \
    --gtest_filter='*SparseActive*:*KeepWindow*:CudaFlashBackward.DtypesHeadDimsCausalOddSizes' > "$out/racecheck.log" 2>&1; result[racecheck]=$?
  tail -3 "$out/racecheck.log"
fi
if [ "$what" != tests ]; then
  python3 cuda/bench/bench_flash.py "$out/bench_flash.json" 2>&1 | tee "$out/bench.log" | grep -v "^$" | tail -60; result[bench]=${PIPESTATUS[0]}
  if [ "${BENCH_BACKWARD:-1}" = 1 ]; then
    python3 cuda/bench/bench_backward.py "$out/bench_backward.json" 2>&1 | tee "$out/bench_backward.log" | grep -v "^$" | tail -30; result[bench_bwd]=${PIPESTATUS[0]}
  fi
  if [ "${BENCH_ASAM:-1}" = 1 ]; then
    python3 cuda/bench/bench_asam.py "$out/bench_asam.json" 2>&1 | tee "$out/bench_asam.log" | tail -14; result[bench_asam]=${PIPESTATUS[0]}
  fi
fi
echo; echo "step       exit"
for k in "${!result[@]}"; do printf '%-10s %s\n' "$k" "${result[$k]}"; done
