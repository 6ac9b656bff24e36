#!/usr/bin/env bash
# The GPU checks of the CUDA issue, as one script for a machine with an NVIDIA GPU:
# build with CUDA for that GPU, run the CUDA and API tests, compute-sanitizer on every
# kernel, the n = 32, d = 1e8 targets and `byzcore bench --device cuda`.
#
#   bash tools/gpu_check.sh [OUTDIR]        (logs land in OUTDIR, default $OUT or ./gpu-check)
#
# Each step has its own time limit so one slow step cannot eat the others; the script goes
# on after a failing step and ends with a summary line per step.
set -u
out="${1:-${OUT:-gpu-check}}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
summary=()

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "=== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.log"
  summary+=("$name: rc=$rc in $((SECONDS - t0))s")
  echo "=== $name: rc=$rc in $((SECONDS - t0))s"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; nvcc --version | tail -1
  $py -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.version.cuda)"
  grep -m1 -o 'avx512f' /proc/cpuinfo || echo "no avx512"; nproc; } 2>&1 | tee "$out/machine.txt"

arch=$($py -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.major}{p.minor}')" 2>/dev/null || echo 90)
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
step build 240 $py -m pip install --no-build-isolation --no-deps --no-index -q -Cbuild-dir=/tmp/byzcore-build \
  -Ccmake.define.BYZCORE_CUDA=ON -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="${arch}-real" .
$py -c "import byzcore; print(byzcore.build_info())" 2>&1 | tee -a "$out/machine.txt"

xdist=""
$py -c "import xdist" 2>/dev/null && xdist="-n 8"
step test_cuda 120 $py -m pytest tests/test_cuda.py -q -p no:cacheprovider -p no:benchmark --maxfail=40 $xdist
export PYTORCH_NO_CUDA_MEMORY_CACHING=1  # every tensor its own allocation: memcheck sees past-the-end reads
step memcheck 120 compute-sanitizer --tool memcheck --error-exitcode 9 $py tools/cuda_smoke.py
unset PYTORCH_NO_CUDA_MEMORY_CACHING
step targets 120 $py bench/cuda_targets.py
step bench 150 $py -m byzcore bench --device cuda --ops median trimmed_mean pairwise_distances krum geometric_median \
  --n 5 32 100 1000 --d 1e4 1e5 1e6 1e7 --max-bytes 1.5GB --repeat 5 --no-progress --json "$out/bench.json"
step racecheck 90 compute-sanitizer --tool racecheck --error-exitcode 9 $py tools/cuda_smoke.py
step synccheck 60 compute-sanitizer --tool synccheck --error-exitcode 9 $py tools/cuda_smoke.py
step test_cpu 120 $py -m pytest tests/test_api.py tests/test_api_cases.py tests/test_api_errors.py tests/test_api_isa.py \
  tests/test_api_nonfinite.py tests/test_api_rand_k.py tests/test_api_aggregators.py tests/test_order_kernels.py \
  tests/test_distance_kernels.py -q -p no:cacheprovider -p no:benchmark --maxfail=40 $xdist

printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
