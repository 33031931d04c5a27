"""Shape and movement ops: reshape, transpose, slice, concat, pad, flip, and
integer-array indexing (take / gather / scatter_add / one_hot).

Example:
    >>> import rustyasg.core as rg
    >>> x = rg.input((2, 3, 4), name="x")
    >>> rg.transpose(x, (2, 0, 1)).shape
    (4, 2, 3)
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..registry import Attr, Example, InputSpec, TensorType, as_int, as_ints
from ..shapes import Dim, format_shape, normalize_axes, normalize_axis, normalize_shape, size_of
from ..builders import builder
from ._define import defop


def _ints_sample(low, high, shape):
    return InputSpec(shape, dtype="int64", low=low, high=high, differentiable=False)


# --- reshape -----------------------------------------------------------------------
def resolve_reshape(src, target):
    """Resolve one ``-1`` in ``target`` against ``src`` and check the sizes agree."""
    target = list(target)
    total = size_of(src)
    if target.count(-1) > 1:
        raise ValueError(f"at most one -1 in reshape target {tuple(target)}")
    if -1 in target:
        known = size_of([d for d in target if not (isinstance(d, int) and d == -1)])
        try:
            target[target.index(-1)] = total // known
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"cannot reshape {format_shape(src)} to {tuple(target)}") from None
    target = normalize_shape(target)
    if size_of(target) != total:
        raise ValueError(f"cannot reshape {format_shape(src)} ({total} elements) to {format_shape(target)} "
                         f"({size_of(target)} elements)")
    return target


reshape = defop("reshape", infer=lambda ts, shape: TensorType(resolve_reshape(ts[0].shape, shape), ts[0].dtype),
                reference=lambda x, shape: x.reshape(shape),
                grad=lambda g, y, x, shape: (g.reshape(x.shape),),
                attrs={"shape": Attr(as_ints)}, kind="movement",
                examples=(Example((InputSpec((2, 6)),), {"shape": (3, -1)}),),
                doc="Reshape without copying data order (row-major); one dim may be -1.")


def _transpose_infer(ts, axes):
    t = ts[0]
    in_range = all(-len(t.shape) <= a < len(t.shape) for a in axes)
    if not in_range or sorted(a % len(t.shape) for a in axes) != list(range(len(t.shape))):
        raise ValueError(f"axes {axes} are not a permutation of the {len(t.shape)} axes of {format_shape(t.shape)}")
    return TensorType(tuple(t.shape[a] for a in axes), t.dtype)


transpose = defop("transpose", infer=_transpose_infer, reference=lambda x, axes: np.transpose(x, axes),
                  grad=lambda g, y, x, axes: (transpose(g, axes=tuple(int(i) for i in np.argsort([a % len(axes) for a in axes]))),),
                  attrs={"axes": Attr(as_ints)}, kind="movement",
                  examples=(Example((InputSpec((2, 3, 4)),), {"axes": (2, 0, 1)}),),
                  doc="Permute axes (PyTorch's ``permute``).")


# --- slice ---------------------------------------------------------------------------
def _multiple_of(v, d: Dim):
    """``v``'s coefficient if it is 0 or a multiple of ``d``'s symbolic product, else None."""
    if isinstance(v, int) and v == 0:
        return 0
    return v.coef if isinstance(v, Dim) and v.factors == d.factors else None


def _slice_dims(shape, starts, stops, steps):
    out = []
    for d, a, b, s in zip(shape, starts, stops, steps):
        if isinstance(d, Dim):
            # Along a symbolic axis: ':' or, with step 1, bounds that are multiples of the same
            # symbols (the pieces of a concat's gradient: x[n:2*n] of a 3*n axis).
            stop = d if b is None else b
            lo, hi = _multiple_of(a, d), _multiple_of(stop, d)
            if s != 1 or lo is None or hi is None or not 0 <= lo <= hi <= d.coef:
                raise ValueError(f"only a full slice ':' is possible along symbolic dimension {d}")
            out.append(stop - a)
        else:
            out.append(len(range(*slice(a, b, s).indices(d))))
    return tuple(out)


def _slice_infer(ts, starts, stops, steps):
    t = ts[0]
    if not (len(starts) == len(stops) == len(steps) == len(t.shape)):
        raise ValueError(f"slice needs one (start, stop, step) per axis of {format_shape(t.shape)}")
    if any(s == 0 for s in steps):
        raise ValueError("slice step cannot be zero")
    return TensorType(_slice_dims(t.shape, starts, stops, steps), t.dtype)


def _slice_ref(x, starts, stops, steps):
    return x[tuple(slice(a, b, s) for a, b, s in zip(starts, stops, steps))]


def _opt_ints(v):
    return tuple(None if x is None else x if isinstance(x, Dim) else int(x) for x in v)


slice_ = defop("slice", infer=_slice_infer, reference=_slice_ref,
               grad=lambda g, y, x, **kw: (slice_grad(g, **kw, shape=x.shape),),
               attrs={"starts": Attr(_opt_ints), "stops": Attr(_opt_ints), "steps": Attr(as_ints)},
               kind="movement",
               examples=(Example((InputSpec((5, 6)),), {"starts": (1, None), "stops": (4, None), "steps": (1, -2)}),),
               doc="Basic slicing ``x[a:b:s, ...]`` with one (start, stop, step) per axis.")


def _slice_grad_ref(g, starts, stops, steps, shape):
    out = np.zeros(shape, dtype=g.dtype)
    out[tuple(slice(a, b, s) for a, b, s in zip(starts, stops, steps))] = g
    return out


def _slice_grad_infer(ts, starts, stops, steps, shape):
    shape = normalize_shape(shape)
    expected = _slice_dims(shape, starts, stops, steps)
    if tuple(ts[0].shape) != expected:
        raise ValueError(f"gradient shape {format_shape(ts[0].shape)} does not match slice shape {format_shape(expected)}")
    return TensorType(shape, ts[0].dtype)


slice_grad = defop("slice_grad", infer=_slice_grad_infer, reference=_slice_grad_ref,
                   grad=lambda g, y, x, starts, stops, steps, shape: (slice_(g, starts=starts, stops=stops, steps=steps),),
                   attrs={"starts": Attr(_opt_ints), "stops": Attr(_opt_ints), "steps": Attr(as_ints),
                          "shape": Attr(as_ints)}, kind="movement",
                   examples=(Example((InputSpec((3, 3)),), {"starts": (1, None), "stops": (4, None), "steps": (1, -2),
                                                           "shape": (5, 6)}),),
                   doc="Scatter a slice's gradient into zeros of the source shape.")


# --- concat ----------------------------------------------------------------------------
def _concat_infer(ts, axis):
    if not ts:
        raise ValueError("needs at least one tensor")
    first = ts[0]
    if any(len(t.shape) == 0 for t in ts):
        raise ValueError("cannot concatenate 0-d tensors (they have no axis); use rustyasg.core.stack")
    ax = normalize_axis(axis, len(first.shape))
    total = 0
    for t in ts:
        if len(t.shape) != len(first.shape) or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != ax):
            raise ValueError(f"concat along axis {axis}: shapes " + ", ".join(format_shape(u.shape) for u in ts)
                             + " differ off that axis")
        if t.dtype != first.dtype:
            raise TypeError(f"concat of different dtypes {first.dtype} and {t.dtype}")
        total = total + t.shape[ax]
    shape = list(first.shape)
    shape[ax] = total
    return TensorType(tuple(shape), first.dtype)


def _concat_grad(g, y, *inputs, axis):
    ax = axis % len(y.shape)
    grads, offset = [], 0
    for t in inputs:
        n = t.shape[ax]
        starts = tuple(offset if i == ax else 0 for i in range(len(y.shape)))
        stops = tuple(offset + n if i == ax else None for i in range(len(y.shape)))
        grads.append(slice_(g, starts=starts, stops=stops, steps=(1,) * len(y.shape)))
        offset = offset + n
    return grads


concat_op = defop("concat", infer=_concat_infer, reference=lambda *xs, axis: np.concatenate(xs, axis=axis),
               grad=_concat_grad, attrs={"axis": Attr(as_int, 0)}, kind="movement", num_inputs=None,
               examples=(Example((InputSpec((2, 3)), InputSpec((2, 5)), InputSpec((2, 1))), {"axis": 1}),),
               doc="Join tensors along an existing axis (``torch.cat``).")


def concat(*tensors, axis: int = 0, name=None):
    """Join tensors along an existing axis: ``concat(a, b, axis=1)`` or ``concat([a, b], axis=1)`` (``torch.cat``).

    >>> import rustyasg.core as rg
    >>> a, b = rg.input((2, 3), name="ca"), rg.input((2, 5), name="cb")
    >>> rg.concat([a, b], axis=1).shape
    (2, 8)
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return concat_op(*tensors, axis=axis, name=name)


# --- pad / flip ---------------------------------------------------------------------------
def _pad_infer(ts, pad_width, value):
    t = ts[0]
    if len(pad_width) != 2 * len(t.shape):
        raise ValueError(f"pad_width needs (before, after) for each of the {len(t.shape)} axes")
    if any(w < 0 for w in pad_width):
        raise ValueError(f"the pad op takes widths >= 0, got {tuple(pad_width)}; "
                         "rustyasg.core.pad crops negative widths with a slice first")
    shape = tuple(d + pad_width[2 * i] + pad_width[2 * i + 1] for i, d in enumerate(t.shape))
    return TensorType(shape, t.dtype)


def _pad_ref(x, pad_width, value):
    pw = [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(x.ndim)]
    return np.pad(x, pw, mode="constant", constant_values=value)


def _pad_grad(g, y, x, pad_width, value):
    nd = len(x.shape)
    starts = tuple(pad_width[2 * i] for i in range(nd))
    stops = tuple(pad_width[2 * i] + x.shape[i] if isinstance(x.shape[i], int) else None for i in range(nd))
    return (slice_(g, starts=starts, stops=stops, steps=(1,) * nd),)


pad_op = defop("pad", infer=_pad_infer, reference=_pad_ref, grad=_pad_grad,
               attrs={"pad_width": Attr(as_ints), "value": Attr(float, 0.0)}, kind="movement",
               examples=(Example((InputSpec((2, 3)),), {"pad_width": (1, 0, 2, 1), "value": 0.5}),),
               doc="Constant padding by widths >= 0; ``pad_width`` lists (before, after) per axis, numpy order.")


@builder("pad")
def pad(x, pad_width, value: float = 0.0, name=None, mode: str = "constant"):
    """Padding; ``pad_width`` lists (before, after) per axis, numpy order.

    ``mode`` is ``"constant"`` (``value``), ``"reflect"``, ``"replicate"`` or ``"circular"``
    (see :func:`pad_mode`).

    A negative width crops that many elements, as in ``torch.nn.functional.pad``: the
    positive widths are a ``pad`` op and the crop a slice of its result (in that order, so
    no intermediate is ever empty), and every backend and the gradient agree.

    >>> import rustyasg.core as rg
    >>> rg.pad(rg.input((4, 5), name="p"), pad_width=(1, -2, 0, 3)).shape
    (3, 8)
    """
    from ..graph import as_tensor

    x = as_tensor(x)
    if mode != "constant":
        return pad_mode(x, pad_width, mode)
    widths = as_ints(pad_width)
    if len(widths) != 2 * x.ndim or not any(w < 0 for w in widths):
        return pad_op(x, pad_width=widths, value=value, name=name)  # the op names any mistake
    crop = [(-min(widths[2 * i], 0), -min(widths[2 * i + 1], 0)) for i in range(x.ndim)]
    for i, ((a, b), d) in enumerate(zip(crop, x.shape)):
        if isinstance(d, Dim) and (a or b):
            raise ValueError(f"cannot crop symbolic dimension {d} (axis {i})")
        if isinstance(d, int) and a + b > d:
            raise ValueError(f"pad widths {tuple(widths)} crop axis {i} of size {d} below zero")
    padded = pad_op(x, pad_width=tuple(max(w, 0) for w in widths), value=value)
    return slice_(padded, starts=tuple(a for a, _ in crop),
                  stops=tuple(None if b == 0 else -b for _, b in crop), steps=(1,) * x.ndim, name=name)


# --- padding modes ----------------------------------------------------------------------------------
def _pad_source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output position along one axis, the source position (modes reflect/replicate/circular)."""
    pos = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":  # wraps within what a negative width leaves (PyTorch crops first)
        lo, hi = max(-before, 0), n - max(-after, 0)
        return lo + np.mod(pos - lo, hi - lo)
    period = 2 * (n - 1)  # reflect: mirror about the edge elements (no repeat of the edge)
    folded = np.mod(pos, period) if period else np.zeros_like(pos)
    return np.where(folded >= n, period - folded, folded)


@builder("pad")
def pad_mode(x, pad_width, mode: str):
    """Pad with ``mode`` ``"reflect"``, ``"replicate"`` or ``"circular"``; ``pad_width`` is numpy order.

    Negative widths crop, as in ``torch.nn.functional.pad``. Each padded axis is one
    ``take`` with a constant index, so the gradient adds the copies back (``take_grad``).

    >>> import rustyasg.core as rg
    >>> rg.pad(rg.constant([1., 2., 3.]), (2, 1), mode="reflect").tolist()
    [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
    """
    from ..graph import as_tensor, constant

    x = as_tensor(x)
    widths = as_ints(pad_width)
    if len(widths) != 2 * x.ndim:
        raise ValueError(f"pad_width needs (before, after) for each of the {x.ndim} axes, got {widths}")
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    y = x
    for ax in range(x.ndim):
        before, after = widths[2 * ax], widths[2 * ax + 1]
        if before == 0 and after == 0:
            continue
        n = x.shape[ax]
        if isinstance(n, Dim):
            raise ValueError(f"{mode} padding needs a concrete size along axis {ax}, but it is symbolic ({n})")
        if n + before + after < 0:
            raise ValueError(f"pad widths ({before}, {after}) crop axis {ax} of size {n} below zero")
        if mode == "reflect" and (before >= n or after >= n):
            raise ValueError(f"reflect padding ({before}, {after}) must be smaller than the size {n} of axis {ax}")
        if mode == "circular" and (before > n or after > n or n + min(before, 0) + min(after, 0) <= 0):
            raise ValueError(f"circular padding ({before}, {after}) may not exceed the size {n} of axis {ax}")
        if n == 0:
            raise ValueError(f"{mode} padding of an empty axis {ax} has nothing to copy")
        y = take(y, constant(_pad_source_index(n, before, after, mode).astype(np.int64)), axis=ax)
    return y


def _flip_infer(ts, axes):
    normalize_axes(axes, len(ts[0].shape))  # in range, none twice (as torch.flip)
    return ts[0]


flip = defop("flip", infer=_flip_infer, reference=lambda x, axes: np.flip(x, axes).copy(),
             grad=lambda g, y, x, axes: (flip(g, axes=axes),), attrs={"axes": Attr(as_ints)}, kind="movement",
             examples=(Example((InputSpec((3, 4)),), {"axes": (1,)}),), doc="Reverse the order along ``axes``.")


# --- integer-array indexing ---------------------------------------------------------------
def _check_index(t):
    if t.dtype not in (dtypes.int32, dtypes.int64):
        raise TypeError(f"indices must be int32 or int64, got {t.dtype}")


def _check_constant_index(tensors, axis, **_):
    """A constant index (``x[[0, 5]]``, ``take(x, constant(...))``) must fit the axis it indexes: checked now."""
    x, idx = tensors[0], tensors[1]
    if idx.op != "constant":
        return
    n = x.shape[normalize_axis(axis, x.ndim)] if x.ndim else 1
    values = idx.attrs["value"]
    if isinstance(n, int) and values.size and (values.min() < -n or values.max() >= n):
        bad = values[(values < -n) | (values >= n)].reshape(-1)[0]
        raise IndexError(f"index {int(bad)} is out of bounds for axis {axis} with size {n}")


def _take_infer(ts, axis):
    x, idx = ts
    _check_index(idx)
    ax = normalize_axis(axis, len(x.shape))
    return TensorType(x.shape[:ax] + idx.shape + x.shape[ax + 1:], x.dtype)


def _take_grad(g, y, x, idx, axis):
    return (take_grad(g, idx, axis=axis, size=x.shape[axis % len(x.shape)]), None)


take = defop("take", infer=_take_infer, reference=lambda x, idx, axis: np.take(x, idx, axis=axis),
             check_values=_check_constant_index,
             grad=_take_grad, attrs={"axis": Attr(as_int, 0)}, kind="movement", num_inputs=2,
             examples=(Example((InputSpec((6, 3)), _ints_sample(0, 6, (2, 4))), {"axis": 0}),
                       Example((InputSpec((2, 5, 3)), _ints_sample(0, 5, (7,))), {"axis": 1})),
             doc="Select entries along ``axis`` by an integer index array (``np.take``; embedding lookup).")


def _take_grad_infer(ts, axis, size):
    g, idx = ts
    _check_index(idx)
    ax = normalize_axis(axis, len(g.shape) - len(idx.shape) + 1)
    shape = g.shape[:ax] + (size,) + g.shape[ax + len(idx.shape):]
    return TensorType(shape, g.dtype)


def _take_grad_ref(g, idx, axis, size):
    nd_out = g.ndim - idx.ndim + 1
    ax = axis % nd_out
    shape = g.shape[:ax] + (size,) + g.shape[ax + idx.ndim:]
    out = np.zeros(shape, dtype=g.dtype)
    gm = np.moveaxis(g.reshape(g.shape[:ax] + (-1,) + g.shape[ax + idx.ndim:]), ax, 0)
    om = np.moveaxis(out, ax, 0)
    np.add.at(om, idx.reshape(-1), gm)
    return out


take_grad = defop("take_grad", infer=_take_grad_infer, reference=_take_grad_ref,
                  grad=lambda gg, y, g, idx, axis, size: (take(gg, idx, axis=axis), None),
                  attrs={"axis": Attr(as_int, 0), "size": Attr(lambda v: v)}, kind="movement", num_inputs=2,
                  examples=(Example((InputSpec((2, 4, 3)), _ints_sample(0, 6, (2, 4))), {"axis": 0, "size": 6}),),
                  doc="Scatter-add rows of ``g`` into ``size`` slots by index (the gradient of ``take``).")


def _check_index_fits(x, idx, axis, what):
    """PyTorch's rule for gather/scatter: off ``axis`` the index may be smaller than ``x``, never larger."""
    for d, (n, m) in enumerate(zip(idx.shape, x.shape)):
        if d != axis and isinstance(n, int) and isinstance(m, int) and n > m:
            raise ValueError(f"index shape {format_shape(idx.shape)} exceeds {what} shape {format_shape(x.shape)} "
                             f"along axis {d} ({n} > {m}); off the {'gather' if what == 'input' else 'scatter'} "
                             f"axis the index may only be smaller")


def _gather_infer(ts, axis):
    x, idx = ts
    _check_index(idx)
    ax = normalize_axis(axis, len(x.shape))
    if len(idx.shape) != len(x.shape):
        raise ValueError(f"index rank {len(idx.shape)} must equal input rank {len(x.shape)}")
    _check_index_fits(x, idx, ax, "input")
    return TensorType(idx.shape, x.dtype)


def index_grids(idx, axis):
    """Open index grids over ``idx``'s shape with ``idx`` itself along ``axis`` (torch.gather/scatter addressing)."""
    if idx.ndim == 0:  # 0-d: the tensor is its own axis (callers view it as shape (1,))
        return (idx,)
    grids = list(np.indices(idx.shape, sparse=True))
    grids[axis % idx.ndim] = idx
    return tuple(grids)


def _gather_ref(x, idx, axis):
    # Not take_along_axis: that broadcasts idx against x; torch.gather reads out[i][j] = x[i][idx[i][j]]
    # for every (i, j) of idx, which may be smaller than x off the gather axis.
    return x.reshape(x.shape or (1,))[index_grids(idx, axis)]


gather = defop("gather", infer=_gather_infer, reference=_gather_ref, check_values=_check_constant_index,
               grad=lambda g, y, x, idx, axis: (scatter_add(zeros_like_shape(x), idx, g, axis=axis), None),
               attrs={"axis": Attr(as_int)}, kind="movement", num_inputs=2,
               examples=(Example((InputSpec((4, 5)), _ints_sample(0, 5, (4, 3))), {"axis": 1}),),
               doc="``torch.gather``: ``out[i][j] = x[i][idx[i][j]]`` along ``axis``.")


def _scatter_add_infer(ts, axis):
    x, idx, src = ts
    _check_index(idx)
    ax = normalize_axis(axis, len(x.shape))
    if tuple(idx.shape) != tuple(src.shape):
        raise ValueError(f"index shape {format_shape(idx.shape)} must equal src shape {format_shape(src.shape)}")
    if len(idx.shape) != len(x.shape):
        raise ValueError(f"index rank {len(idx.shape)} must equal destination rank {len(x.shape)}")
    _check_index_fits(x, idx, ax, "destination")
    if src.dtype != x.dtype:
        raise TypeError(f"src dtype {src.dtype} differs from destination {x.dtype}")
    return x


def _scatter_add_ref(x, idx, src, axis):
    out = x.copy()
    np.add.at(out.reshape(out.shape or (1,)), index_grids(idx, axis), src)
    return out


scatter_add = defop("scatter_add", infer=_scatter_add_infer, reference=_scatter_add_ref,
                    check_values=_check_constant_index,
                    grad=lambda g, y, x, idx, src, axis: (g, None, gather(g, idx, axis=axis)),
                    attrs={"axis": Attr(as_int)}, kind="movement", num_inputs=3,
                    examples=(Example((InputSpec((4, 5)), _ints_sample(0, 5, (4, 3)), InputSpec((4, 3))), {"axis": 1}),),
                    doc="``torch.scatter_add``: add ``src`` into a copy of ``x`` at ``idx`` along ``axis``.")


def _one_hot_infer(ts, num_classes, dtype):
    _check_index(ts[0])
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}; a graph's shapes are fixed before "
                         "the labels are seen, so it cannot be inferred from them (PyTorch's -1): "
                         "pass the number of classes")
    return TensorType(ts[0].shape + (num_classes,), dtype)


def _one_hot_ref(idx, num_classes, dtype):
    return (idx[..., None] == np.arange(num_classes)).astype(dtype)


one_hot = defop("one_hot", infer=_one_hot_infer, reference=_one_hot_ref, grad=lambda g, y, i, **_: (None,),
                attrs={"num_classes": Attr(as_int), "dtype": Attr(dtypes.as_dtype, dtypes.float32)},
                kind="elementwise",
                examples=(Example((_ints_sample(0, 5, (6,)),), {"num_classes": 5, "dtype": dtypes.float64},
                                  check_grad=False),),
                doc="One-hot encode integer labels into a new last axis.")


def _zeros_like_infer(ts):
    return ts[0]


zeros_like_shape = defop("zeros_like", infer=_zeros_like_infer, reference=lambda x: np.zeros_like(x),
                         grad=lambda g, y, x: (None,), kind="source",
                         examples=(Example((InputSpec((2, 3)),), check_grad=False),),
                         doc="Zeros with ``x``'s shape and dtype (``x``'s values are not read).")
