"""Opcode counts of a cubin's kernels on a machine without cuobjdump / nvdisasm (the CPU
machines here have nvcc and ptxas only): whether a change kept the wgmma descriptors on the
uniform datapath (R2UR count), or how many instructions a kernel grew by, without a GPU call.

Each sm_90 instruction is 16 bytes; the low 12 bits of its first 64-bit word name the opcode.
Calibrated against cuobjdump --dump-sass on the H100 (CUDA 13.0): 0x2ca is R2UR, 0x9f0 and
0xdf0 the two HGMMA forms. Other opcodes print by number.

  nvcc -std=c++17 --expt-relaxed-constexpr -O3 -DNDEBUG -DATTN_CUDA_SM90A \\
       -gencode=arch=compute_90a,code=sm_90a -cubin -I cuda/src -I cuda/include -I src \\
       -o /tmp/fwd.cubin cuda/src/flash_fwd_sm90_bf16.cu
  python3 cuda/bench/sass_histogram.py /tmp/fwd.cubin Li128ELi0E   (kernels whose name contains it)
"""
import collections
import struct
import sys

NAMES = {0x2CA: "R2UR", 0x9F0: "HGMMA", 0xDF0: "HGMMA"}


def sections(path):
    """(name, bytes) of each section of an ELF64 little-endian file."""
    data = open(path, "rb").read()
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    for h in headers:
        start = names_at + h[0]
        yield data[start:data.index(b"\0", start)].decode(), data[h[4]:h[4] + h[5]]


def kernel_opcodes(path, pattern):
    """{kernel name: [opcode of each instruction]} for the .text sections whose name contains pattern."""
    return {name[len(".text."):]: [struct.unpack_from("<Q", code, at)[0] & 0xFFF for at in range(0, len(code), 16)]
            for name, code in sections(path) if name.startswith(".text.") and pattern in name}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for name, ops in kernel_opcodes(sys.argv[1], sys.argv[2]).items():
        counts = collections.Counter(ops)
        named = collections.Counter()
        for op, n in counts.items():
            if op in NAMES:
                named[NAMES[op]] += n
        print(f"{name}\n  {len(ops)} instructions; " + ", ".join(f"{k} {v}" for k, v in sorted(named.items())))
        print("  most frequent: " + " ".join(f"{op:03x}:{n}" for op, n in counts.most_common(12)))


if __name__ == "__main__":
    main()
