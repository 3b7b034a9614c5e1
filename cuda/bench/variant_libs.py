"""The kernel-variant libraries named on a variant script's command line (NAME=LIB.so ...),
loaded with ctypes: [(name, lib)], each lib's entry point `symbol` returning an int status."""
import ctypes


def load(args, symbol):
    variants = []
    for arg in args:
        name, path = arg.split("=", 1)
        lib = ctypes.CDLL(path)
        getattr(lib, symbol).restype = ctypes.c_int
        variants.append((name, lib))
    return variants
