"""GPU benchmark of the wgpu nn-primitive kernels (conv, pooling, norms) against torch.cuda.

Each case builds the op's launches through the kernel interface (as the executor
does), times them replayed in one pass (``time_gpu``: host-timed, many repeats per
submit), checks the result against torch in float64 on the GPU, and times torch's
fp32 kernel (TF32 off) for comparison. Variants (a forced kernel choice) are timed
beside the default to show what a choice buys.

Example::

    python benchmarks/gpu/nn_kernels.py --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[2]
for _part in ("rustyasg-core", "rustyasg-wgpu"):
    if str(_ROOT / _part / "src") not in sys.path:
        sys.path.insert(0, str(_ROOT / _part / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from rustyasg.core.program import Instr  # noqa: E402
from rustyasg.core.registry import OPS, TensorType  # noqa: E402
from rustyasg.core import dtypes  # noqa: E402
from rustyasg.wgpu.buffers import BufferPool, Readback, upload  # noqa: E402
from rustyasg.wgpu.device import get_context  # noqa: E402
from rustyasg.wgpu.kernels import nn_conv, nn_conv_direct, nn_norm, nn_pool  # noqa: E402
from rustyasg.wgpu.kernels.api import KernelBuilder, TensorView, storage_for  # noqa: E402
from rustyasg.wgpu.kernels.autotune import time_gpu  # noqa: E402
from rustyasg.wgpu.pipelines import PipelineCache  # noqa: E402

KERNELS = {**nn_conv.KERNELS, **nn_pool.KERNELS, **nn_norm.KERNELS}
aten = torch.ops.aten
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a smoke run of the plumbing


def torch_time(fn, min_seconds=0.05):
    """Median seconds per ``fn()`` with CUDA events, after warm-up."""
    if DEVICE != "cuda":
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(); fn(); end.record(); torch.cuda.synchronize()
    reps = max(3, min(200, int(min_seconds / max(start.elapsed_time(end) / 1e3, 1e-6))))
    times = []
    for _ in range(3):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / reps)
    return float(np.median(times))


def _torch_fn(op, attrs, shapes):
    """``f(*tensors)`` computing ``op`` with torch (same operand order as the rustyasg op)."""
    a = attrs
    if op == "conv2d":
        return lambda x, w: F.conv2d(x, w, None, a["stride"], a["padding"], a["dilation"], a["groups"])
    if op.startswith("conv2d_backward"):
        which = op == "conv2d_backward_weight"

        def conv_back(g, other):
            x = other if which else torch.empty((g.shape[0],) + (shapes[1][1] * a["groups"],)
                                                + tuple(a["input_size"]), dtype=g.dtype, device=g.device)
            w = torch.empty((g.shape[1], x.shape[1] // a["groups"]) + tuple(a["kernel_size"]), dtype=g.dtype,
                            device=g.device) if which else other
            res = aten.convolution_backward(g, x, w, None, a["stride"], a["padding"], a["dilation"], False, [0, 0],
                                            a["groups"], [not which, which, False])
            return res[1] if which else res[0]
        return conv_back
    if op in ("max_pool2d", "max_pool2d_indices"):
        i = int(op.endswith("indices"))
        return lambda x: F.max_pool2d(x, a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"],
                                      return_indices=True)[i]
    if op == "max_pool2d_backward":
        def mp_back(g, x):
            _, idx = F.max_pool2d(x, a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"],
                                  return_indices=True)
            return aten.max_pool2d_with_indices_backward(g, x, a["kernel_size"], a["stride"], a["padding"],
                                                         a["dilation"], a["ceil_mode"], idx)
        return mp_back
    if op == "avg_pool2d":
        return lambda x: F.avg_pool2d(x, a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"],
                                      a["count_include_pad"], a["divisor_override"])
    if op == "avg_pool2d_backward":
        def ap_back(g):
            x = torch.empty(g.shape[:2] + tuple(a["input_size"]), dtype=g.dtype, device=g.device)
            return aten.avg_pool2d_backward(g, x, a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"],
                                            a["count_include_pad"], a["divisor_override"])
        return ap_back
    if op == "adaptive_avg_pool2d":
        return lambda x: F.adaptive_avg_pool2d(x, a["output_size"])
    if op == "adaptive_avg_pool2d_backward":
        def aap_back(g):
            x = torch.empty(g.shape[:2] + tuple(a["input_size"]), dtype=g.dtype, device=g.device)
            return aten._adaptive_avg_pool2d_backward(g, x)
        return aap_back
    if op == "layer_norm":
        return lambda x, w, b: F.layer_norm(x, w.shape, w, b, a["eps"])
    if op == "layer_norm_backward":
        def ln_back(g, x, w):
            _, mean, rstd = aten.native_layer_norm(x, w.shape, w, None, a["eps"])
            return aten.native_layer_norm_backward(g, x, w.shape, mean, rstd, w, None, [True, False, False])[0]
        return ln_back
    if op == "batch_norm":
        return lambda x, w, b: F.batch_norm(x, None, None, w, b, True, 0.0, a["eps"])
    if op == "batch_norm_backward":
        def bn_back(g, x, w):
            _, mean, invstd = aten.native_batch_norm(x, w, None, None, None, True, 0.0, a["eps"])[:3]
            return aten.native_batch_norm_backward(g, x, w, None, None, mean, invstd, True, a["eps"],
                                                   [True, False, False])[0]
        return bn_back
    raise KeyError(op)


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


VARIANTS = {
    "s=1": lambda: patched(nn_conv, "images_per_split", lambda geo, m: 1),
    "gemm": lambda: patched(nn_conv_direct, "DIRECT_MAX_OUT_PER_GROUP", 0),
    "direct": lambda: patched(nn_conv_direct, "DIRECT_MAX_OUT_PER_GROUP", 1 << 30),
    "implicit": lambda: patched(nn_conv, "conv_mode", lambda kb=None: "implicit"),
    "im2col": lambda: patched(nn_conv, "conv_mode", lambda kb=None: "im2col"),
    "fused rows": lambda: patched(nn_norm, "SEGMENT", 1 << 40),
    "tree reduce": lambda: patched(KernelBuilder, "has_subgroups", property(lambda self: False)),
}


class Bench:
    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)  # float32, or float16 (f16 storage, the tensor cores' GEMMs)
        self.ctx = get_context()
        self.pipelines = PipelineCache(self.ctx)
        self.pool = BufferPool(self.ctx)
        self.readback = Readback(self.ctx)
        self.kb = KernelBuilder(self.ctx, self.pipelines, scratch_alloc=lambda n, label: self.pool.acquire(n))
        self.rows = []
        self.rng = np.random.default_rng(0)

    def case(self, name, op, shapes, attrs, flops=None, variants=()):
        t0 = time.perf_counter()
        attrs = OPS[op].check_attrs(attrs)
        out_t = OPS[op].infer([TensorType(s, self.dtype) for s in shapes], **attrs)
        arrays = [self.rng.standard_normal(s, dtype=np.float32).astype(self.dtype) for s in shapes]
        st_in = storage_for(self.dtype, True)
        views = [TensorView(upload(self.ctx, st_in.to_device(a), self.pool), s, self.dtype, st_in)
                 for a, s in zip(arrays, shapes)]
        st = storage_for(out_t.dtype, True)
        shape = tuple(out_t.shape)
        size = int(np.prod(shape))
        out = TensorView(self.pool.acquire(size * st.itemsize), shape, np.dtype(out_t.dtype), st)
        instr = Instr(0, op, (), attrs, shape, np.dtype(out_t.dtype))
        fn = _torch_fn(op, attrs, shapes)
        tin = [torch.from_numpy(a).to(DEVICE) for a in arrays]
        with torch.no_grad():
            ref = fn(*[t.double() for t in tin]).cpu().numpy()
            t_torch = torch_time(lambda: fn(*tin))
        nbytes = sum(a.nbytes for a in arrays) + size * st.itemsize
        for variant in ("default",) + tuple(variants):
            ctx = VARIANTS[variant]() if variant != "default" else contextlib.nullcontext()
            with ctx:
                launches = KERNELS[op](self.kb, instr, views, out)
            t = time_gpu(self.ctx, lambda cp: [launch.encode(cp) for launch in launches])
            got = st.to_host(self.readback.read(out.buffer, size * st.itemsize), shape, out.dtype)
            if ref.dtype.kind in "iu":
                err = float(np.mean(got != ref))
            else:
                err = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
            row = dict(name=name, op=op, variant=variant, ms=t * 1e3, torch_ms=t_torch * 1e3, ratio=t_torch / t,
                       err=err, launches=len(launches), gbps=nbytes / t / 1e9,
                       tflops=(flops / t / 1e12) if flops else None,
                       labels=sorted({launch.label for launch in launches}))
            self.rows.append(row)
            perf = f"{row['tflops']:6.2f} TF/s" if flops else f"{row['gbps']:7.0f} GB/s"
            print(f"{name:28s} {op:30s} {variant:11s} {row['ms']:8.3f} ms  torch {row['torch_ms']:8.3f} ms  "
                  f"x{row['ratio']:5.2f}  {perf}  err {err:.1e}  n={len(launches)}", flush=True)
        print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
        for buf in [v.buffer for v in views] + [out.buffer]:
            self.pool.release(buf)


def conv_cases(b: Bench, batch: int, layers: str = ""):
    cases = [
        ("stem 7x7/2 3->64 @224", (batch, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
        ("3x3 64->64 @56", (batch, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
        ("3x3/2 128->256 @28", (batch, 128, 28, 28), (256, 128, 3, 3), dict(stride=2, padding=1)),
        ("3x3 512->512 @7", (batch, 512, 7, 7), (512, 512, 3, 3), dict(padding=1)),
        ("1x1 256->64 @56", (batch, 256, 56, 56), (64, 256, 1, 1), {}),
        ("dw 3x3 256 @28", (batch, 256, 28, 28), (256, 1, 3, 3), dict(padding=1, groups=256)),
    ]
    wanted = [w for w in layers.split(",") if w]
    for name, xs, ws, hp in [case for case in cases if not wanted or any(w in case[0] for w in wanted)]:
        hp = OPS["conv2d"].check_attrs(hp)
        y = tuple(OPS["conv2d"].infer([TensorType(xs, dtypes.float32), TensorType(ws, dtypes.float32)], **hp).shape)
        flops = 2.0 * np.prod(y) * np.prod(ws[1:])
        other = ("gemm",) if ws[0] // hp["groups"] <= nn_conv_direct.DIRECT_MAX_OUT_PER_GROUP else ()
        # The forced lowerings beside the default (auto): 1x1 has no columns to gather.
        implicit = ("implicit", "im2col") if hp["groups"] == 1 and ws[2:] != (1, 1) else ()
        b.case(name, "conv2d", [xs, ws], hp, flops, variants=other + implicit)
        b.case(name, "conv2d_backward_input", [y, ws], dict(hp, input_size=xs[2:]), flops, variants=other + implicit)
        b.case(name, "conv2d_backward_weight", [y, xs], dict(hp, kernel_size=ws[2:]), flops,
               variants=(other or ("s=1",)) + implicit)


def pool_cases(b: Bench, batch: int):
    mp = dict(kernel_size=3, stride=2, padding=1)
    xs = (batch, 64, 112, 112)
    b.case("maxpool 3x3/2 @112", "max_pool2d", [xs], mp)
    b.case("maxpool 3x3/2 @112", "max_pool2d_indices", [xs], mp)
    y = (batch, 64, 56, 56)
    b.case("maxpool 3x3/2 @112", "max_pool2d_backward", [y, xs], mp)
    ap = dict(kernel_size=2, stride=2, padding=0, count_include_pad=True)
    b.case("avgpool 2x2 @56", "avg_pool2d", [(batch, 256, 56, 56)], ap)
    b.case("avgpool 2x2 @56", "avg_pool2d_backward", [(batch, 256, 28, 28)], dict(ap, input_size=(56, 56)))
    b.case("global avg 2048 @7", "adaptive_avg_pool2d", [(batch, 2048, 7, 7)], dict(output_size=(1, 1)))
    b.case("global avg 2048 @7", "adaptive_avg_pool2d_backward", [(batch, 2048, 1, 1)],
           dict(output_size=(1, 1), input_size=(7, 7)))


def norm_cases(b: Bench, batch: int):
    rows, d = 16384, 768
    b.case("layernorm 16384x768", "layer_norm", [(rows, d), (d,), (d,)], dict(normalized_ndim=1),
           variants=("tree reduce",))
    b.case("layernorm 16384x768", "layer_norm_backward", [(rows, d), (rows, d), (d,)], dict(normalized_ndim=1))
    xs = (batch, 64, 112, 112)
    b.case("batchnorm 64ch @112", "batch_norm", [xs, (64,), (64,)], dict(axis=1), variants=("fused rows",))
    b.case("batchnorm 64ch @112", "batch_norm_backward", [xs, xs, (64,)], dict(axis=1), variants=("fused rows",))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="conv,pool,norm")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--layers", default="", help="conv layers whose name contains one of these comma-separated strings")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                    help="float16: f16 tensors (the GEMMs on the tensor cores where the adapter has them), torch in half")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    b = Bench(args.dtype)
    where = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
    print(f"adapter: {b.ctx.summary}; torch {torch.__version__} on {where}", flush=True)
    sections = {"conv": lambda b, batch: conv_cases(b, batch, args.layers), "pool": pool_cases, "norm": norm_cases}
    for name in args.sections.split(","):
        try:
            sections[name](b, args.batch)
        except Exception as exc:  # report and go on: one broken section must not lose the others
            import traceback
            traceback.print_exc()
            print(f"section {name} failed: {exc}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(b.rows, indent=1))


if __name__ == "__main__":
    main()
