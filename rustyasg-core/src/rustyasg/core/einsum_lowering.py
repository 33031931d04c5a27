"""``einsum`` for any equation, lowered to diagonals, sums, transposes, reshapes and batched matmuls.

The equation is parsed once while the graph is built (``...`` broadcasting, implicit
output, repeated letters in one operand = a diagonal). Each operand first loses the
letters no other operand nor the output needs (a sum); then operands are contracted
left to right, each pair as ONE batched matmul: letters both share and still need are
batch axes, letters only this pair needs are summed by the matmul, the rest are kept
as the matmul's rows and columns. No op is new, so every backend runs it and the
gradient is the ops' own.

Example:
    >>> import rustyasg.core as rg
    >>> a, b = rg.input((2, 3, 4), name="a"), rg.input((2, 4, 5), name="b")
    >>> rg.einsum("bij,bjk->bik", a, b).shape
    (2, 3, 5)
    >>> rg.einsum("ii->i", rg.input((3, 3), name="m")).shape
    (3,)
"""

from __future__ import annotations

import string
from typing import List, Sequence, Tuple

from .builders import builder
from .graph import Tensor, as_tensor
from .ops import linalg, movement, reduce

__all__ = ["einsum"]

_LETTERS = set(string.ascii_letters)


def parse(equation: str, ranks: Sequence[int]) -> Tuple[List[str], str]:
    """Operand subscripts and output subscripts, with ``...`` expanded to upper-case-free private letters.

    >>> parse("...ij,...jk", [3, 2])
    (['0ij', 'jk'], '0ik')
    """
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ValueError(f"equation {equation!r} has {len(terms)} operand(s), got {len(ranks)} tensor(s)")
    ell_rank = 0
    for t, r in zip(terms, ranks):
        named = len(t.replace("...", ""))
        if "..." in t:
            ell_rank = max(ell_rank, r - named)
        if any(ch not in _LETTERS for ch in t.replace("...", "")):
            raise ValueError(f"subscripts must be letters (and '...'), got {t!r}")
        if ("..." not in t and named != r) or named > r:
            raise ValueError(f"subscripts {t!r} do not match an operand of rank {r}")
    ell = "".join(str(i) for i in range(ell_rank))  # digits never clash with letters
    expanded = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            n = r - len(t.replace("...", ""))
            t = t.replace("...", ell[ell_rank - n:])
        expanded.append(t)
    if arrow:
        if rhs.count("...") > 1 or any(ch not in _LETTERS for ch in rhs.replace("...", "")):
            raise ValueError(f"bad output subscripts {rhs!r}")
        out = rhs.replace("...", ell)
        seen = set("".join(expanded))
        for ch in out:
            if ch not in seen:
                raise ValueError(f"output subscript {ch!r} appears in no operand")
            if out.count(ch) > 1:
                raise ValueError(f"output subscript {ch!r} appears twice")
    else:  # implicit: ellipsis axes, then letters seen once, alphabetically
        counts = {}
        for ch in "".join(expanded):
            counts[ch] = counts.get(ch, 0) + 1
        out = ell + "".join(sorted(ch for ch, k in counts.items() if k == 1 and ch in _LETTERS))
    return expanded, out


def _take_diagonals(x: Tensor, sub: str) -> Tuple[Tensor, str]:
    """Collapse repeated letters of one operand into a diagonal (``ii -> i``)."""
    from .movement_functions import diagonal

    while True:
        dup = next((ch for ch in sub if sub.count(ch) > 1), None)
        if dup is None:
            return x, sub
        i = sub.index(dup)
        j = sub.index(dup, i + 1)
        if x.shape[i] != x.shape[j]:
            raise ValueError(f"subscript {dup!r} labels axes of sizes {x.shape[i]} and {x.shape[j]}")
        x = diagonal(x, 0, i, j)  # removes both axes, appends the diagonal
        sub = sub[:i] + sub[i + 1:j] + sub[j + 1:] + dup


def _permute(x: Tensor, sub: str, order: str) -> Tensor:
    if sub == order:
        return x
    return movement.transpose(x, axes=tuple(sub.index(ch) for ch in order))


def _contract(a: Tensor, sa: str, b: Tensor, sb: str, keep: set) -> Tuple[Tensor, str]:
    """One batched matmul: batch = shared & kept, summed = shared & not kept."""
    shared = [ch for ch in sa if ch in sb]
    batch = "".join(ch for ch in shared if ch in keep)
    summed = "".join(ch for ch in shared if ch not in keep)
    rows = "".join(ch for ch in sa if ch not in sb)
    cols = "".join(ch for ch in sb if ch not in sa)
    size = {}
    for x, s in ((a, sa), (b, sb)):
        for ch, d in zip(s, x.shape):
            if ch in size and size[ch] != d and d != 1 and size[ch] != 1:
                raise ValueError(f"subscript {ch!r} labels axes of sizes {size[ch]} and {d}")
            size[ch] = d if ch not in size or size[ch] == 1 else size[ch]
    a = _broadcast_batch(_permute(a, sa, batch + rows + summed), batch, size)
    b = _broadcast_batch(_permute(b, sb, batch + summed + cols), batch, size)

    def prod(s):
        p = 1
        for ch in s:
            p = p * size[ch]
        return p

    bshape = tuple(size[ch] for ch in batch)
    a3 = movement.reshape(a, shape=bshape + (prod(rows), prod(summed)))
    b3 = movement.reshape(b, shape=bshape + (prod(summed), prod(cols)))
    y = linalg.matmul(a3, b3)
    return movement.reshape(y, shape=bshape + tuple(size[ch] for ch in rows + cols)), batch + rows + cols


def _broadcast_batch(x: Tensor, batch: str, size: dict) -> Tensor:
    want = tuple(size[ch] for ch in batch) + tuple(x.shape[len(batch):])
    return x if tuple(x.shape) == want else reduce.broadcast_to(x, shape=want)


@builder()
def einsum(equation: str, *operands) -> Tensor:
    """``torch.einsum`` / ``np.einsum`` for any equation (``...``, implicit output, ``ii`` diagonals).

    >>> import rustyasg.core as rg
    >>> rg.einsum("i,j->ij", rg.input((3,), name="u"), rg.input((4,), name="v")).shape
    (3, 4)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum needs at least one operand")
    xs = [as_tensor(x) for x in operands]
    subs, out = parse(equation, [x.ndim for x in xs])
    items = [_take_diagonals(x, s) for x, s in zip(xs, subs)]
    # Sum out letters only one operand has and the output does not.
    reduced = []
    for k, (x, s) in enumerate(items):
        others = set(out).union(*(set(t) for j, (_, t) in enumerate(items) if j != k))
        lone = [i for i, ch in enumerate(s) if ch not in others]
        if lone:
            x = reduce.sum(x, axis=tuple(lone))
            s = "".join(ch for ch in s if ch in others)
        reduced.append((x, s))
    x, s = reduced[0]
    for k in range(1, len(reduced)):
        later = set(out).union(*(set(t) for _, t in reduced[k + 1:]))
        x, s = _contract(x, s, reduced[k][0], reduced[k][1], later)
    return _permute(x, s, out)
