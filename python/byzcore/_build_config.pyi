# Types of the module CMakeLists.txt writes at configure time from csrc/build_config.py.in
# (absent from a source tree with copied modules, which _native handles).
ISA_MODULES: list[str]
CUDA_ARCHITECTURES: list[str]
BUILD_TYPE: str
LTO: bool
COMPILER: str
