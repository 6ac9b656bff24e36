"""Build byzcore's core with the CUDA kernels compiled for the CPU emulator (cuda_runtime.h here).

    python tools/cuda_emu/build.py OUTDIR [--asan]

Writes OUTDIR/_core_emu*.so: the usual core module in which device="cuda" messages run the
csrc/cuda kernels on host memory. tools/cuda_emu/check.py then compares them with NumPy. This
tests the kernels' logic without a GPU; it says nothing about their speed or about real
device memory.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import sysconfig

import pybind11

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Kernel launches `name<T><<<config>>>(args)`, also split across lines as clang-format writes
# long ones (`name<T>\n    <<<grid, block, 0, stream>>>(args)`).
LAUNCH = re.compile(r"([\w:]+(?:<[^<>;]*>)?)\s*<<<(.+?)>>>\s*\(", re.S)


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def main() -> None:
    out = os.path.abspath(sys.argv[1])
    asan = "--asan" in sys.argv
    src = os.path.join(out, "src")
    os.makedirs(src, exist_ok=True)
    sources = []
    for cu in sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu"))):
        if os.path.basename(cu) == "info_cuda.cu":
            continue
        with open(cu) as fh:
            text = fh.read()
        text = LAUNCH.sub(lambda m: f"::emu::launch({m.group(2)})({m.group(1)}, ", text)
        if "<<<" in text:
            line = text[:text.index("<<<")].count("\n") + 1
            sys.exit(f"{cu}: a kernel launch the emulator cannot parse (converted line {line})")
        dst = os.path.join(src, os.path.basename(cu)[:-3] + ".cpp")
        with open(dst, "w") as fh:
            fh.write(text)
        sources.append(dst)
    info = os.path.join(src, "info_emu.cpp")
    with open(info, "w") as fh:
        fh.write('#include "byzcore/backends.h"\nnamespace byzcore { namespace cuda {\n'
                 'bool compiled() { return true; }\nint device_count() { return 1; }\n'
                 'std::string describe() { return "emulated"; }\n}}\n')
    sources.append(info)
    for pattern in ("ops", "cpu", "bindings"):
        sources += sorted(glob.glob(os.path.join(ROOT, "csrc", pattern, "*.cpp")))
    ext = sysconfig.get_config_var("EXT_SUFFIX")
    target = os.path.join(out, "_core_emu" + ext)
    flags = ["-std=c++17", "-O1", "-g", "-fPIC", "-shared", "-fopenmp",
             "-I" + os.path.join(ROOT, "tools", "cuda_emu"), "-I" + os.path.join(ROOT, "csrc", "include"),
             "-I" + os.path.join(ROOT, "csrc"), "-I" + pybind11.get_include(),
             "-I" + sysconfig.get_paths()["include"],
             '-DBYZCORE_ISA="emu"', "-DBYZCORE_MODULE_NAME=_core_emu", '-DBYZCORE_VERSION="emu"',
             "-DBYZCORE_WITH_CUDA=1", "-Wno-unused-parameter"]
    if asan:
        flags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    # One object per source, rebuilt only when its text changed (headers: delete OUTDIR/obj).
    objdir = os.path.join(out, "obj")
    os.makedirs(objdir, exist_ok=True)
    objects = []
    for source in sources:
        obj = os.path.join(objdir, os.path.basename(os.path.dirname(source)) + "_" + os.path.basename(source) + ".o")
        stamp = obj + ".src"
        with open(source) as fh:
            text = fh.read()
        if not (os.path.exists(obj) and os.path.exists(stamp) and _read(stamp) == text):
            print("compile", os.path.basename(source), flush=True)
            compile_flags = [f for f in flags if f != "-shared"]
            subprocess.run(["g++", *compile_flags, "-c", source, "-o", obj], check=True)
            with open(stamp, "w") as fh:
                fh.write(text)
        objects.append(obj)
    subprocess.run(["g++", *flags, *objects, "-o", target], check=True)
    print("built", target, flush=True)


if __name__ == "__main__":
    main()
