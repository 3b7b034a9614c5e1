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
python3 cuda/bench/bwd_variants.py "${args[@]}" 2>&1 | tee "$out/bwd_variants.txt"
