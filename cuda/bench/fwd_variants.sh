#!/usr/bin/env bash
# Builds the dense bf16 forward kernels of several source trees or compile flags side by side
# (fwd_variant.cu, one small library each) and times them in turn against SDPA flash, for
# kernel experiments on the GPU machine:
#   cuda/bench/fwd_variants.sh "new" "old@/path/to/older/cuda/src" "try -DSOME_MACRO=1" ...
# Each spec is NAME[@SRC_DIR] [nvcc flags] (SRC_DIR defaults to cuda/src); a library already in
# build/fwdv/NAME.so is reused (build them on a CPU machine and carry them). Prints the ptxas
# register / spill lines and a TFLOP/s table (also in $OUT/variants.txt).
set -uo pipefail
out=${OUT:-fwd-variants}; mkdir -p "$out" build/fwdv
nvcc=${NVCC:-nvcc}
args=()
for spec in "$@"; do
  read -r head flags <<< "$spec"
  name=${head%@*}; src=cuda/src; [[ $head == *@* ]] && src=${head#*@}
  [ -f build/fwdv/$name.so ] || ( $nvcc -std=c++17 --expt-relaxed-constexpr -O3 -arch=sm_90 -lineinfo -shared -Xcompiler -fPIC -Xptxas -v \
      -I "$src" -I cuda/include -I src $flags -o build/fwdv/$name.so cuda/bench/fwd_variant.cu \
      > build/fwdv/$name.log 2>&1 || echo "BUILD FAILED $name"
    true ) &
  args+=("$name=$PWD/build/fwdv/$name.so")
done
wait
for spec in "$@"; do
  read -r head flags <<< "$spec"; name=${head%@*}
  echo "$name: $(grep -E 'spill|Used' build/fwdv/$name.log | paste -sd' ' | sed 's/ptxas info    ://g; s/bytes //g')"
done
python3 cuda/bench/fwd_variants.py "${args[@]}" 2>&1 | tee "$out/variants.txt"
