"""What ``Trainer(..., distributed=...)`` needs from a distributed strategy.

``rustyasg.nn`` does not depend on the distributed part: ``distributed=True`` imports
``rustyasg.distributed`` only then (a missing part raises ``MissingPartError`` with the
pip command) and uses its ``DataParallel()``; any object with the methods of
:class:`DistributedStrategy` may be passed instead (``DataParallel(zero=1)``, say).

Example:
    >>> strategy_for(False) is None
    True
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class DistributedStrategy(Protocol):
    """The hooks the training loop calls on every rank, in the same order on every rank."""

    is_main: bool  # rank 0: shows progress, logs, writes checkpoints

    def wrap_optimizer(self, optimizer: Any) -> Any:
        """The optimizer whose ``updates(loss)`` the compiled step uses (gradients synchronised)."""

    def on_fit_start(self, trainer: Any) -> None:
        """Make the ranks' starting state equal (after a resume, too)."""

    def save(self, write: Callable[[], T]) -> Optional[T]:
        """Run ``write`` on the main rank only; every rank returns its result once it is on disk."""

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any rank (Ctrl-C on one rank stops every rank at the same step)."""

    def mean(self, value: float, weight: float) -> float:
        """The ``weight``-weighted mean of ``value`` over ranks."""

    def mean_logs(self, logs: Mapping[str, Any], weight: float) -> dict:
        """Numeric entries of ``logs`` averaged over ranks, weighted by ``weight``."""


def strategy_for(distributed) -> Optional[DistributedStrategy]:
    """``None`` for ``False``; the distributed part's data-parallel strategy for ``True``; else the object."""
    if distributed is False or distributed is None:
        return None
    if distributed is True:
        import rustyasg.distributed as dist  # raises MissingPartError naming the pip command if absent

        return dist.DataParallel()
    if not isinstance(distributed, DistributedStrategy):
        raise TypeError(f"distributed must be True, False or a strategy such as rustyasg.distributed.DataParallel(); "
                        f"got {type(distributed).__name__}")
    return distributed
