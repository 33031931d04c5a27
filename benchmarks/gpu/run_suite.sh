#!/usr/bin/env bash
# The whole GPU suite in one call on the lent machine (see /work/shared/GPU.md):
#   benchmarks (run_gpu.py: training steps W2/W4/W5 vs torch.cuda, per-launch profile, matmul,
#   elementwise, f16/subgroup/cooperative-matrix, reductions, model-shaped matmuls),
#   the nn-kernel benchmark (nn_kernels.py), then the wgpu conformance and executor tests
#   on the real GPU. Results go to $OUT (or ./gpu-out): suite.json, nn.json, *.log.
# Usage (repo root, with .gl and .whl carried):  bash benchmarks/gpu/run_suite.sh
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/rustyasg-core/src:$PWD/rustyasg-wgpu/src:$PWD/rustyasg-nn/src:$PWD/benchmarks/gpu:$PWD/benchmarks
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json PYTHONUNBUFFERED=1
export RUSTYASG_CACHE_DIR=$OUT/cache
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv > "$OUT/gpu.csv" 2>&1
timeout "${SUITE_S:-330}" python3 benchmarks/gpu/run_gpu.py \
  --sections features,training,profile,matmul,elementwise,experimental,reduction,matmul_cases \
  --json "$OUT/suite.json" > "$OUT/suite.log" 2>&1
echo "run_gpu.py exit $?"
timeout "${NN_S:-120}" python3 benchmarks/gpu/nn_kernels.py --json "$OUT/nn.json" > "$OUT/nn.log" 2>&1
echo "nn_kernels.py exit $?"
timeout "${TEST_S:-90}" python3 -c "
import sys, pytest, training
training.ensure_backend()  # no entry points on this machine: register the wgpu plugin and backend
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/wgpu/test_wgpu_conformance.py', 'tests/wgpu/test_executor.py']))
" > "$OUT/tests.log" 2>&1
echo "tests exit $?"
grep -v XDG "$OUT/suite.log" | sed -n '/==== summary/,$p'
grep -E "passed|failed" "$OUT/tests.log" | tail -3
