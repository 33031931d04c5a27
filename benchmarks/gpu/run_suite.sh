#!/usr/bin/env bash
# The whole GPU suite in one call on the lent machine (see /work/shared/GPU.md):
#   benchmarks (run_gpu.py: training steps W2/W4/W5 vs torch.cuda, per-launch profile, matmul,
#   elementwise, f16/subgroup/cooperative-matrix, reductions, model-shaped matmuls),
#   the nn-kernel benchmark (nn_kernels.py), fused attention (attention.py), then the wgpu conformance and executor tests
#   on the real GPU; then the same tests on Dawn (RUSTYASG_WEBGPU=dawn, wgpudawn's wheel in .whl),
#   the tensor-core matmul benchmark (tensor_cores.py) and the targets table (targets.py).
#   Results go to $OUT (or ./gpu-out): suite.json, nn.json, attention.json, tc.json, targets.json, *.log.
# Usage (repo root, with .gl and .whl carried):  bash benchmarks/gpu/run_suite.sh
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/rustyasg-core/src:$PWD/rustyasg-wgpu/src:$PWD/rustyasg-nn/src:$PWD/benchmarks/gpu:$PWD/benchmarks
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json PYTHONUNBUFFERED=1
export RUSTYASG_CACHE_DIR=$OUT/cache
export RUSTYASG_WEBGPU=native  # wgpu-native first; the Dawn half below (auto would pick Dawn on a GPU)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv > "$OUT/gpu.csv" 2>&1
timeout "${SUITE_S:-330}" python3 benchmarks/gpu/run_gpu.py \
  --sections features,training,profile,matmul,elementwise,experimental,reduction,matmul_cases \
  --json "$OUT/suite.json" > "$OUT/suite.log" 2>&1
echo "run_gpu.py exit $?"
timeout "${NN_S:-120}" python3 benchmarks/gpu/nn_kernels.py --json "$OUT/nn.json" > "$OUT/nn.log" 2>&1
echo "nn_kernels.py exit $?"
timeout "${ATTN_S:-120}" python3 benchmarks/gpu/attention.py --json "$OUT/attention.json" > "$OUT/attention.log" 2>&1
echo "attention.py exit $?"
timeout "${TEST_S:-90}" python3 -c "
import sys, pytest, training
training.ensure_backend()  # no entry points on this machine: register the wgpu plugin and backend
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/wgpu/test_wgpu_conformance.py', 'tests/wgpu/test_executor.py']))
" > "$OUT/tests.log" 2>&1
echo "tests exit $?"
export RUSTYASG_WEBGPU=dawn
timeout "${TC_S:-150}" python3 benchmarks/gpu/tensor_cores.py --sizes 4096,8192 --json "$OUT/tc.json" > "$OUT/tc.log" 2>&1
echo "tensor_cores.py exit $?"
timeout "${TARGETS_S:-300}" python3 benchmarks/gpu/targets.py --json "$OUT/targets.json" > "$OUT/targets.log" 2>&1
echo "targets.py exit $?"
timeout "${TEST_S:-240}" python3 -c "
import sys, pytest, training
training.ensure_backend()
sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/wgpu/test_wgpu_conformance.py', 'tests/wgpu/test_executor.py',
                     'tests/wgpu/test_tensor_cores.py', 'tests/wgpu/test_nn_kernels.py', 'tests/wgpu/test_webgpu_choice.py']))
" > "$OUT/tests_dawn.log" 2>&1
echo "dawn tests exit $?"
unset RUSTYASG_WEBGPU
grep -v XDG "$OUT/suite.log" | sed -n '/==== summary/,$p'
grep -E "passed|failed" "$OUT/tests.log" | tail -3
sed -n '/^attention (/,$p' "$OUT/attention.log"
sed -n '/==== tensor-core summary/,$p' "$OUT/tc.log"
sed -n '/==== targets/,$p' "$OUT/targets.log"
grep -E "passed|failed" "$OUT/tests_dawn.log" | tail -3
