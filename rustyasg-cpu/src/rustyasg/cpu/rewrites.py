"""CPU graph rewrites that run before fusion (see each function).

``cpu_broadcast_elim``: an explicit ``broadcast_to`` feeding elementwise ops is
dropped when the op's own broadcasting gives the same result. Gradients of
reductions produce these (``broadcast_to(reshape(g))``); as a view with zero
strides it would otherwise force a copy before a fused kernel, which reads a
broadcast operand directly.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((4, 3), name="x")
    >>> (g,) = rg.grad(rg.sum(rg.tanh(x)), [x])
    >>> f = rg.function([x], g, backend="cpu")
    >>> "broadcast_to" in [i.op for i in f.lower(np.ones((4, 3), np.float32)).instrs]
    False
"""

from __future__ import annotations

import numpy as np

from rustyasg.core.backend_api import LOW_PRECISION
from rustyasg.core.shapes import broadcast_shapes

from .kernels.protocol import Elementwise


def broadcast_elim(program):
    from .fusion import _kernel_table

    table = _kernel_table()
    by_id = program.by_id()
    changed = False
    for ins in program.instrs:
        if not isinstance(table.get(ins.op), Elementwise):
            continue
        new = list(ins.inputs)
        for k, a in enumerate(new):
            src = by_id[a]
            if src.op != "broadcast_to":
                continue
            trial = new[:k] + [src.inputs[0]] + new[k + 1:]
            try:
                shape = broadcast_shapes(*[by_id[t].shape for t in trial])
            except ValueError:
                continue
            if tuple(shape) == tuple(ins.shape):
                new = trial
        if tuple(new) != ins.inputs:
            ins.inputs = tuple(new)
            changed = True
    if changed:
        from rustyasg.core.passes import dce

        program = dce(program)
    return program


def moments(program):
    """A ``mean`` and a ``var`` of the same value over the same axes become one ``cpu.moments``.

    A batch norm's running statistics are such a pair (``nn.batch_statistics``). Apart, the
    mean was a numba loop and the variance numpy's ``var``, which makes four passes and two
    temporaries (1.6 ms of the demo's 17 ms step for its three batch norms). Together they are
    the two-pass loop the batch norm kernels already use (``kernels.norm.channel_moments``):
    one kernel, the mean and the variance read as views of its ``(2, ...)`` result. Only where
    the kept axes are adjacent (a channel block between reduced axes), and past
    :data:`~.kernels.protocol.SMALL_ALONE` elements: smaller ones stay numpy's, with no kernel
    to compile.
    """
    from rustyasg.core.program import Instr
    from rustyasg.core.shapes import normalize_axes

    from .kernels.norm import kept_block
    from .kernels.protocol import SMALL_ALONE

    by_id = program.by_id()

    def key(ins):
        x = by_id[ins.inputs[0]]
        axes = normalize_axes(ins.attrs.get("axis"), len(x.shape))
        return x.id, axes, bool(ins.attrs.get("keepdims", False))

    means = {}
    for ins in program.instrs:
        if ins.op != "mean":
            continue
        x = by_id[ins.inputs[0]]
        if x.dtype == ins.dtype and x.dtype in (np.float32, np.float64) and x.size > SMALL_ALONE:
            means.setdefault(key(ins), ins)
    pairs = {}
    for ins in program.instrs:
        if ins.op != "var" or ins.dtype != by_id[ins.inputs[0]].dtype:
            continue
        k = key(ins)
        mean = means.get(k)
        if mean is None or mean.id in pairs or kept_block(by_id[ins.inputs[0]].shape, k[1]) is None:
            continue
        pairs[mean.id] = ins
    if not pairs:
        return program
    next_id, out = program.new_id(), []
    first = {min(m, v.id): (m, v) for m, v in pairs.items()}
    for ins in program.instrs:
        if ins.id in first:  # the moments go where the earlier of the two stood
            m, v = first[ins.id]
            both = Instr(next_id, "cpu.moments", (v.inputs[0],), {"axis": key(v)[1], "correction": v.attrs["correction"]},
                         (2,) + tuple(v.shape), v.dtype, v.source)
            next_id += 1
            out.append(both)
            for member, k in ((by_id[m], 0), (v, 1)):
                member.op, member.inputs, member.attrs = "cpu.moment", (both.id,), {"index": k}
        out.append(ins)
    program.instrs = out
    return program


def _insert_before(program, new):
    """``program`` with each instruction of ``new`` (reader id -> new instruction) placed just before
    that reader."""
    out = []
    for ins in program.instrs:
        if ins.id in new:
            out.append(new[ins.id])
        out.append(ins)
    program.instrs = out
    return program


def batch_norm_stats(program):
    """A batch norm's statistics, once: the ops of a training step that compute them from one input
    share a ``cpu.channel_stats`` (its ``(2, C)`` float64 mean and biased variance).

    A training step computes a batch norm's statistics four times over the same input: its forward
    op, its backward op, the forward op again (autograd's normalised input for the scale's
    gradient) and the running statistics (``cpu.moments``). Each is two passes over the input.
    Here ``batch_norm`` becomes ``cpu.batch_norm`` and ``batch_norm_backward``
    ``cpu.batch_norm_backward``, both reading the shared statistics, and the running statistics
    become ``cpu.moments_from_stats`` (2 x C values on numpy: the variance rescaled to its
    correction). The statistics are the same float64 values each op computed alone, so the
    results are the same to the bit. Only where two or more such ops read one input.
    """
    from rustyasg.core.backend_api import normalize_axis
    from rustyasg.core.program import Instr
    from rustyasg.core.shapes import normalize_axes

    by_id = program.by_id()
    users = {}  # (input id, channel axis) -> instructions
    for ins in program.instrs:
        if ins.op in ("batch_norm", "batch_norm_backward"):
            x = by_id[ins.inputs[0 if ins.op == "batch_norm" else 1]]
            key = (x.id, normalize_axis(ins.attrs["axis"], len(x.shape)))
        elif ins.op == "cpu.moments":
            x = by_id[ins.inputs[0]]
            kept = set(range(len(x.shape))) - set(normalize_axes(ins.attrs["axis"], len(x.shape)))
            if len(kept) != 1:
                continue
            key = (x.id, kept.pop())
        else:
            continue
        if x.dtype in (np.float32, np.float64):
            users.setdefault(key, []).append(ins)
    shared = {key: group for key, group in users.items()
              if len(group) > 1 and any(u.op != "cpu.moments" for u in group)}
    if not shared:
        return program
    next_id, first = program.new_id(), {}
    for (x_id, axis), group in shared.items():
        x = by_id[x_id]
        stats = Instr(next_id, "cpu.channel_stats", (x_id,), {"axis": axis}, (2, x.shape[axis]), np.dtype(np.float64),
                      group[0].source)
        next_id += 1
        first[group[0].id] = stats
        for ins in group:
            if ins.op == "batch_norm":
                x_, gamma, beta = ins.inputs
                ins.op, ins.inputs = "cpu.batch_norm", (x_, stats.id, gamma, beta)
            elif ins.op == "batch_norm_backward":
                g, x_, gamma = ins.inputs
                ins.op, ins.inputs = "cpu.batch_norm_backward", (g, x_, stats.id, gamma)
            else:
                ins.op, ins.inputs = "cpu.moments_from_stats", (stats.id,)
                ins.attrs = {"correction": ins.attrs["correction"], "count": x.size // max(x.shape[axis], 1)}
    return _insert_before(program, first)  # the statistics go just before their first reader


def gelu_gate(program):
    """A tanh-GELU's gate, once: where a step computes ``gelu_tanh(x)`` and its gradient
    ``gelu_tanh_grad(g, x)``, both read one ``cpu.gelu_tanh_gate(x)``.

    The gate ``s = sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))`` is an exp and a division per element,
    most of either op's work: the forward becomes ``x * s`` (fused, it writes ``s`` beside its
    result) and the gradient ``cpu.gelu_tanh_grad_gated(g, x, s)``, arithmetic only. The formulas
    are the core's, so the values are the same to the bit. float32 and float64 only: a 16-bit
    gate would be rounded where the single op keeps it in float32.
    """
    from rustyasg.core.program import Instr

    by_id = program.by_id()
    forward, backward, first = {}, {}, {}
    for ins in program.instrs:
        if ins.op not in ("gelu_tanh", "gelu_tanh_grad"):
            continue
        x = ins.inputs[-1]
        if ins.dtype in (np.float32, np.float64) and by_id[x].dtype == ins.dtype:
            first.setdefault(x, ins.id)
            if ins.op == "gelu_tanh":
                forward.setdefault(x, ins)
            else:
                backward.setdefault(x, []).append(ins)
    shared = [x for x in forward if x in backward]
    if not shared:
        return program
    next_id, gates = program.new_id(), {}
    for x in shared:
        fwd = forward[x]
        gates[first[x]] = Instr(next_id, "cpu.gelu_tanh_gate", (x,), {}, fwd.shape, fwd.dtype, fwd.source)
        fwd.op, fwd.inputs = "mul", (x, next_id)
        for ins in backward[x]:
            ins.op, ins.inputs = "cpu.gelu_tanh_grad_gated", (ins.inputs[0], x, next_id)
        next_id += 1
    return _insert_before(program, gates)


def matmul_batch_fold(program):
    """``sum_to(transpose(X) @ G)`` over batch dims -> one GEMM on the flattened batch.

    The weight gradient of ``x @ W`` with a batched ``x`` (``(B, T, K) @ (K, N)``)
    comes out of autograd as ``sum_to(mT(x) @ g, (K, N))``: B small GEMMs and a
    reduction. Summing per-batch products is one product of the stacked
    matrices: ``reshape(x, (B*T, K)).T @ reshape(g, (B*T, N))``.
    """
    from rustyasg.core.program import Instr

    by_id = program.by_id()
    users = program.users()
    roots = set(program.roots())
    new_instrs, changed = [], False
    next_id = program.new_id()
    for ins in program.instrs:
        m = by_id.get(ins.inputs[0]) if ins.op == "sum_to" and ins.inputs else None
        fold = None
        if (m is not None and m.op == "matmul" and len(ins.shape) == 2 and len(m.shape) > 2
                and users[m.id] == [ins.id] and m.id not in roots):
            a, g = by_id[m.inputs[0]], by_id[m.inputs[1]]
            nd = len(m.shape)
            swap = tuple(range(nd - 2)) + (nd - 1, nd - 2)
            if (a.op == "transpose" and tuple(a.attrs["axes"]) == swap and len(g.shape) == nd
                    and tuple(by_id[a.inputs[0]].shape[:-2]) == tuple(g.shape[:-2]) == tuple(m.shape[:-2])
                    and tuple(m.shape[-2:]) == tuple(ins.shape)):
                fold = (by_id[a.inputs[0]], g)
        if fold is None:
            new_instrs.append(ins)
            continue
        x, g = fold
        rows = int(np.prod(x.shape[:-1]))
        x2 = Instr(next_id, "reshape", (x.id,), {"shape": (rows, x.shape[-1])}, (rows, x.shape[-1]), x.dtype,
                   ins.source)
        xt = Instr(next_id + 1, "transpose", (x2.id,), {"axes": (1, 0)}, (x.shape[-1], rows), x.dtype, ins.source)
        g2 = Instr(next_id + 2, "reshape", (g.id,), {"shape": (rows, g.shape[-1])}, (rows, g.shape[-1]), g.dtype,
                   ins.source)
        next_id += 3
        new_instrs += [x2, xt, g2]
        ins.op, ins.inputs, ins.attrs = "matmul", (xt.id, g2.id), {}
        new_instrs.append(ins)
        changed = True
    program.instrs = new_instrs
    if changed:
        from rustyasg.core.passes import dce

        program = dce(program)
    return program


#: Bytes of one image's float32 columns from which a convolution of a 16-bit input builds its
#: columns in chunks (:func:`~.kernels.conv.chunk_images`) instead of sharing them.
CHUNKED_IMAGE_BYTES = 1 << 20


def conv_im2col(program):
    """Give ``conv2d`` and ``conv2d_backward_weight`` one shared column matrix.

    Both ops read the same im2col of the same input; as separate kernels they
    would build it twice (the largest memory traffic of a small CNN's step).
    Each becomes a GEMM on an explicit ``cpu.im2col`` instruction, deduplicated
    by (input, geometry). The columns then live from the forward pass to the
    weight gradient, which the memory planner accounts for.

    A convolution of a 16-bit input whose columns are large (one image's at least
    :data:`CHUNKED_IMAGE_BYTES`) shares nothing: the convolution and its weight gradient read
    the 16-bit input and build float32 columns a few images at a time (``columns="chunked"``),
    so a bfloat16 step keeps only the 16-bit activations, as autocast in PyTorch does.

    Under rematerialization (``memory_budget=`` or checkpoint regions) the columns are not
    shared: kept from the forward pass to the weight gradient they would be the step's largest
    values (9x the input of a 3x3 convolution), out of the pass's reach. Each convolution then
    builds its columns in its own scratch, live for that step only, and the weight gradient
    builds them again from its input (a copy, cheap next to the GEMM).
    """
    from rustyasg.core.program import Instr

    from .kernels.conv import hyper, is_pointwise

    if program.options.get("remat"):
        return program
    by_id = program.by_id()
    made, out, next_id, dead_copies = {}, [], program.new_id(), False
    low = frozenset(np.dtype(d) for d in LOW_PRECISION)
    for ins in program.instrs:
        if ins.op == "conv2d":
            x, w = by_id[ins.inputs[0]], by_id[ins.inputs[1]]
            kernel, out_hw = tuple(w.shape[2:]), tuple(ins.shape[2:])
        elif ins.op == "conv2d_backward_weight":
            x = by_id[ins.inputs[1]]
            kernel, out_hw = tuple(ins.attrs["kernel_size"]), tuple(by_id[ins.inputs[0]].shape[2:])
        else:
            out.append(ins)
            continue
        stride, padding, dilation, groups = hyper(ins.attrs)
        if is_pointwise(kernel, stride, padding):
            out.append(ins)
            continue
        # a 16-bit input is widened once per reader (``cpu_float16``): the forward and the weight
        # gradient read different float32 copies of one value, which make the same columns
        root = by_id[x.inputs[0]] if x.op == "cast" and by_id[x.inputs[0]].dtype in low else x
        # one image's columns in float32 (what the widened path builds; the same threshold for both)
        image_bytes = x.shape[1] * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] * max(x.dtype.itemsize, 4)
        if (root is not x or x.dtype in low) and image_bytes >= CHUNKED_IMAGE_BYTES:
            # kept from the forward pass to the weight gradient, these columns would be the step's
            # largest values (18x the 16-bit input in float32, 9x as the bfloat16 columns of the
            # ``cpu_bf16_gemm`` path); each op reads the 16-bit input instead and builds the
            # columns a few images at a time (``kernels.conv.chunk_images``)
            k = 0 if ins.op == "conv2d" else 1
            ins.inputs = ins.inputs[:k] + (root.id,) + ins.inputs[k + 1:]
            ins.attrs = {**ins.attrs, "columns": "chunked"}
            dead_copies = True
            out.append(ins)
            continue
        key = (root.id, x.dtype, kernel, stride, padding, dilation, out_hw)
        cols = made.get(key)
        if cols is not None and cols.inputs[0] != x.id:
            dead_copies = True
        if cols is None:
            n, c = x.shape[:2]
            shape = (c * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1])
            cols = Instr(next_id, "cpu.im2col", (x.id,), {"kernel_size": kernel, "stride": stride,
                         "padding": padding, "dilation": dilation, "out_hw": out_hw}, shape, x.dtype, ins.source)
            next_id += 1
            made[key] = cols
            out.append(cols)
        if ins.op == "conv2d":
            ins.op, ins.inputs = "cpu.conv2d_gemm", (cols.id, ins.inputs[1])
        else:
            ins.op, ins.inputs = "cpu.conv2d_gemm_weight", (ins.inputs[0], cols.id)
        ins.attrs = {"groups": groups}
        out.append(ins)
    program.instrs = out
    if dead_copies:
        from rustyasg.core.passes import dce

        program = dce(program)  # the widened copies whose columns are shared
    return program


def _slice_ranges(attrs, shape):
    """Per axis, the set of indices a basic slice selects."""
    return [set(range(*slice(a, b, s).indices(d))) for a, b, s, d in
            zip(attrs["starts"], attrs["stops"], attrs["steps"], shape)]


def _disjoint(r1, r2) -> bool:
    return any(not (a & b) for a, b in zip(r1, r2))


def slice_assemble(program):
    """Sums of ``slice_grad`` pieces that do not overlap -> one ``cpu.assemble``.

    Splitting a tensor (``q, k, v = qkv[0], qkv[1], qkv[2]``) makes each piece's
    gradient a zero tensor of the full shape with the piece copied in, and the
    pieces are then added: two full-size temporaries and two adds per split.
    When the pieces are disjoint the sum is just the pieces written side by side.
    """
    by_id = program.by_id()
    users = program.users()
    roots = set(program.roots())
    pieces = {}  # instr id -> [(input id, slice attrs)] for slice_grad / assembled values
    for ins in program.instrs:
        if ins.op == "slice_grad":
            pieces[ins.id] = [(ins.inputs[0], {k: ins.attrs[k] for k in ("starts", "stops", "steps")})]
    changed = False
    for ins in program.instrs:
        if ins.op != "add" or len(ins.inputs) != 2:
            continue
        a, b = ins.inputs
        if a == b or a not in pieces or b not in pieces:
            continue
        if any(len(users[x]) != 1 or x in roots for x in (a, b)):
            continue
        if by_id[a].shape != ins.shape or by_id[b].shape != ins.shape or by_id[a].dtype != ins.dtype:
            continue
        parts = pieces[a] + pieces[b]
        ranges = [_slice_ranges(p, ins.shape) for _, p in parts]
        if not all(_disjoint(ranges[i], ranges[j]) for i in range(len(parts)) for j in range(i)):
            continue
        ins.op, ins.inputs = "cpu.assemble", tuple(src for src, _ in parts)
        ins.attrs = {"slices": tuple(tuple((p["starts"][k], p["stops"][k], p["steps"][k])
                                           for k in range(len(ins.shape))) for _, p in parts)}
        pieces[ins.id] = parts
        changed = True
    if changed:
        from rustyasg.core.passes import dce

        program = dce(program)
    return program


def float16_compute(program):
    """``cpu_float16``: float16 and bfloat16 are stored as 16-bit words and computed in float32.

    numba has no float16 or bfloat16 arithmetic on the cpu: every instruction on a 16-bit
    float other than a view computes in float32 between casts
    (:func:`rustyasg.core.backend_api.compute_widened`); bfloat16 casts are bit shifts
    (:mod:`.kernels.bfloat16`). A 16-bit matmul thus runs as float32 GEMM: numpy and numba
    have no faster low-precision GEMM on the cpu.

    >>> import numpy as np, rustyasg.core as rg
    >>> h = rg.input((3,), "float16", name="h")
    >>> f = rg.function([h], rg.sum(h * 2.0), backend="cpu")
    >>> f(np.ones(3, np.float16))
    array(6., dtype=float16)
    >>> b = rg.input((3,), "bfloat16", name="b")
    >>> float(rg.function([b], rg.sum(b * 2.0), backend="cpu")(np.ones(3, rg.bfloat16)))
    6.0
    """
    from rustyasg.core.backend_api import compute_widened

    return compute_widened(program)
