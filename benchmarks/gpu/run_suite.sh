#!/usr/bin/env bash
# The whole GPU suite in one call on the lent machine (see /work/shared/GPU.md):
#   benchmarks (run_gpu.py: training steps W2/W4/W5 vs torch.cuda, per-launch profile, matmul,
#   elementwise, f16/subgroup/cooperative-matrix, reductions, model-shaped matmuls),
#   the nn-kernel benchmark (nn_kernels.py), fused attention (attention.py), then the wgpu conformance and executor tests
#   on the real GPU; then the whole tests/wgpu directory on Dawn (RUSTYASG_WEBGPU=dawn, wgpudawn's wheel in .whl),
#   the tensor-core matmul benchmark (tensor_cores.py) and the targets table (targets.py).
#   Results go to $OUT (or ./gpu-out): suite.json, nn.json, attention.json, tc.json, targets.json, *.log.
# Usage (repo root, with .gl and .whl carried):  bash benchmarks/gpu/run_suite.sh
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/rustyasg-core/src:$PWD/rustyasg-wgpu/src:$PWD/rustyasg-nn/src:$PWD/rustyasg-cpu/src:$PWD/benchmarks/gpu:$PWD/benchmarks
# The parts are on PYTHONPATH, not installed: their entry points, so fresh processes find the backends
# (the cpu backend's too where the machine has numba: some wgpu tests compare with it).
python3 -c "import numba" 2>/dev/null && PARTS="core cpu wgpu nn" || PARTS="core wgpu nn"
python3 benchmarks/gpu/entry_points.py /tmp/site $PARTS > /dev/null || exit 1
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
# The whole wgpu test directory under Dawn, in four processes (one process took over ten minutes).
T=tests/wgpu
dawn_tests() {  # name, pytest arguments...
  local name=$1; shift
  RUSTYASG_CACHE_DIR=/tmp/cache-$name timeout "${TEST_S:-300}" python3 -m pytest -q -p no:cacheprovider -rfE "$@" \
    > "$OUT/tests_dawn_$name.log" 2>&1
}
dawn_tests 1 $T/test_wgpu_conformance.py $T/test_wgpu_elementwise.py &
dawn_tests 2 $T/test_executor.py $T/test_integer_reductions.py $T/test_narrow_integers.py $T/test_wgpu_buffers.py \
  $T/test_wgpu_device.py $T/test_wgpu_pipelines.py $T/test_wgpu_first_run.py $T/test_webgpu_choice.py &
dawn_tests 3 $T/test_nn_kernels.py $T/test_tensor_cores.py $T/test_wgpu_matmul.py $T/test_wgpu_matmul_layouts.py &
dawn_tests 4 $T/test_wgpu_attention.py $T/test_tensor_core_attention.py $T/test_wgpu_random.py \
  $T/test_wgpu_training_parity.py &
wait
echo "dawn tests done"
unset RUSTYASG_WEBGPU
grep -v XDG "$OUT/suite.log" | sed -n '/==== summary/,$p'
grep -E "passed|failed" "$OUT/tests.log" | tail -3
sed -n '/^attention (/,$p' "$OUT/attention.log"
sed -n '/==== tensor-core summary/,$p' "$OUT/tc.log"
sed -n '/==== targets/,$p' "$OUT/targets.log"
for n in 1 2 3 4; do grep -E "passed|failed" "$OUT/tests_dawn_$n.log" | tail -1; grep -E "^(FAILED|ERROR)" "$OUT/tests_dawn_$n.log"; done
