"""Exceptions of RustyASG; every graph error names the op, shapes and user file:line."""

from __future__ import annotations


class RustyASGError(Exception):
    """Base class of every error RustyASG raises on purpose."""


class GraphBuildError(RustyASGError, ValueError):
    """An op was applied to operands it cannot take (shape, dtype or attribute).

    Raised while the graph is built, never at run time. The message names the op,
    the operand shapes/dtypes and the user's ``file:line`` that created the node.
    """

    def __init__(self, op: str, message: str, operands=(), source: str | None = None):
        self.op = op
        self.detail = message
        self.operands = tuple(operands)
        self.source = source
        text = f"{op}: {message}"
        if self.operands:
            text += "\n  operands: " + ", ".join(self.operands)
        if source:
            text += f"\n  created at {source}"
        super().__init__(text)


class ShapeError(GraphBuildError):
    """Operand shapes are incompatible."""


class IndexingError(ShapeError, IndexError):
    """An index is out of range or there are more indices than axes."""


class DTypeError(GraphBuildError, TypeError):
    """Operand dtypes are incompatible."""


class AttributeSchemaError(GraphBuildError):
    """An op attribute is unknown, missing or of the wrong kind."""


class UnfedInputError(RustyASGError, ValueError):
    """A tensor's value was asked for outside a compiled function, but it depends on ``rg.input`` tensors.

    The message names the inputs and how to give them values (``rg.function``, ``rg.jit``,
    ``rg.evaluate``).
    """


class NotDifferentiableError(RustyASGError):
    """``grad`` met an op without a gradient rule on the path to the output."""


class BackendError(RustyASGError, RuntimeError):
    """A backend is unknown, not installed, or cannot run a program."""


class MissingPartError(RustyASGError, ModuleNotFoundError):
    """A RustyASG part that is not installed was used; the message names the pip command."""


class MissingKernelError(BackendError):
    """A backend has no kernel for an op in the program."""
