"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their cells, as ``torch.nn``.

The graph is unrolled over the (static) sequence length: the input projection of every
time step is one matmul per layer and direction, then each step adds ``h @ W_hh^T`` and
applies the cell. Parameter names, shapes, gate order (LSTM ``i, f, g, o``; GRU ``r, z, n``)
and initialisation ``U(-1/sqrt(hidden), 1/sqrt(hidden))`` are PyTorch's, so a
``state_dict`` moves between the two unchanged. ``num_layers``, ``bidirectional``,
``batch_first``, ``dropout`` between layers, LSTM ``proj_size`` and unbatched inputs are
supported.

Example:
    >>> import rustyasg.core as rg
    >>> lstm = LSTM(4, 8, num_layers=2, bidirectional=True, batch_first=True)
    >>> out, (h, c) = lstm(rg.input((3, 5, 4), name="seq"))
    >>> out.shape, h.shape, c.shape
    ((3, 5, 16), (4, 3, 8), (4, 3, 8))
    >>> sorted(lstm.state_dict())[:2]
    ['bias_hh_l0', 'bias_hh_l0_reverse']
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

import rustyasg.core as rg
from rustyasg.core import Tensor

from . import init
from ._checks import shape_error
from .dropout import dropout
from .module import Module

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "lstm_cell", "gru_cell", "rnn_cell"]

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _linear(x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
    y = x @ w.mT
    return y if b is None else y + b


def lstm_cell(gates_x: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Optional[Tensor],
              w_hr: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """One LSTM step from the precomputed input projection ``gates_x`` (``x @ W_ih^T + b_ih``)."""
    i, f, g, o = rg.split(gates_x + _linear(h, w_hh, b_hh), 4, axis=-1)
    c = rg.sigmoid(f) * c + rg.sigmoid(i) * rg.tanh(g)
    h = rg.sigmoid(o) * rg.tanh(c)
    return (h if w_hr is None else h @ w_hr.mT), c


def gru_cell(gates_x: Tensor, h: Tensor, w_hh: Tensor, b_hh: Optional[Tensor]) -> Tensor:
    """One GRU step: ``n = tanh(x_n + r * (h W_hn^T + b_hn))``, ``h' = (1 - z) * n + z * h``."""
    xr, xz, xn = rg.split(gates_x, 3, axis=-1)
    hr, hz, hn = rg.split(_linear(h, w_hh, b_hh), 3, axis=-1)
    r, z = rg.sigmoid(xr + hr), rg.sigmoid(xz + hz)
    n = rg.tanh(xn + r * hn)
    return n + z * (h - n)


def rnn_cell(gates_x: Tensor, h: Tensor, w_hh: Tensor, b_hh: Optional[Tensor], nonlinearity: str = "tanh") -> Tensor:
    """One Elman step: ``act(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    y = gates_x + _linear(h, w_hh, b_hh)
    return rg.tanh(y) if nonlinearity == "tanh" else rg.relu(y)


class _RNNBase(Module):
    """Parameters and the unrolled forward shared by RNN, LSTM and GRU."""

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 nonlinearity: str = "tanh", dtype="float32"):
        super().__init__()
        name = type(self).__name__
        if num_layers < 1 or hidden_size < 1:
            raise ValueError(f"{name}: num_layers and hidden_size must be >= 1")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if proj_size and (self.mode != "LSTM" or not 0 < proj_size < hidden_size):
            raise ValueError(f"{name}: proj_size must be 0, or in (0, hidden_size) for LSTM")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{name}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.num_layers, self.bias = input_size, hidden_size, num_layers, bias
        self.batch_first, self.dropout, self.bidirectional = batch_first, float(dropout), bidirectional
        self.proj_size, self.nonlinearity = proj_size, nonlinearity
        gates = GATES[self.mode if self.mode != "RNN" else f"RNN_{nonlinearity.upper()}"]
        out_size = proj_size or hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * directions
            for suffix in ("", "_reverse")[:directions]:
                # Registration order follows PyTorch's _flat_weights_names.
                self._param(f"weight_ih_l{layer}{suffix}", (gates * hidden_size, layer_in), bound, dtype)
                self._param(f"weight_hh_l{layer}{suffix}", (gates * hidden_size, out_size), bound, dtype)
                if bias:
                    self._param(f"bias_ih_l{layer}{suffix}", (gates * hidden_size,), bound, dtype)
                    self._param(f"bias_hh_l{layer}{suffix}", (gates * hidden_size,), bound, dtype)
                if proj_size:
                    self._param(f"weight_hr_l{layer}{suffix}", (proj_size, hidden_size), bound, dtype)

    def _param(self, name: str, shape, bound: float, dtype) -> None:
        self.register_parameter(name, init.uniform(shape, -bound, bound, dtype=dtype))

    def _weights(self, layer: int, reverse: bool):
        s = f"l{layer}{'_reverse' if reverse else ''}"
        get = lambda k: getattr(self, f"{k}_{s}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    def _initial(self, hx, batch, dtype):
        directions = 2 if self.bidirectional else 1
        h_size, out_size = self.hidden_size, self.proj_size or self.hidden_size
        shapes = [(self.num_layers * directions, batch, out_size)]
        if self.mode == "LSTM":
            shapes.append((self.num_layers * directions, batch, h_size))
        if hx is None:
            return [rg.broadcast_to(rg.constant(np.zeros((), dtype)), shape=s) for s in shapes]
        states = list(hx) if self.mode == "LSTM" else [hx]
        if len(states) != len(shapes):
            raise ValueError(f"{type(self).__name__}: hx must be {'(h_0, c_0)' if self.mode == 'LSTM' else 'h_0'}")
        for st, sh in zip(states, shapes):
            if tuple(st.shape) != sh:
                raise shape_error(type(self).__name__, f"initial state shape {tuple(st.shape)} must be {sh}", st)
        return states

    def _step(self, gx, state, w_hh, b_hh, w_hr):
        if self.mode == "LSTM":
            return lstm_cell(gx, state[0], state[1], w_hh, b_hh, w_hr)
        if self.mode == "GRU":
            return (gru_cell(gx, state[0], w_hh, b_hh),)
        return (rnn_cell(gx, state[0], w_hh, b_hh, self.nonlinearity),)

    def forward(self, x: Tensor, hx=None):
        name = type(self).__name__
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise shape_error(name, f"input must be (L, N, {self.input_size}) ((N, L, ...) with batch_first) "
                                    f"or unbatched (L, {self.input_size})", x)
        unbatched = x.ndim == 2
        if unbatched:
            x = rg.unsqueeze(x, 1)
            if hx is not None:
                hx = tuple(rg.unsqueeze(h, 1) for h in hx) if self.mode == "LSTM" else rg.unsqueeze(hx, 1)
        elif self.batch_first:
            x = rg.transpose(x, (1, 0, 2))
        length, batch = x.shape[0], x.shape[1]
        if not isinstance(length, int):
            raise shape_error(name, "the sequence length must be concrete: the graph is unrolled over it", x)
        states = self._initial(hx, batch, x.dtype)
        directions = 2 if self.bidirectional else 1
        finals = [[] for _ in states]
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(directions):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d == 1)
                gates_x = _linear(layer_in, w_ih, b_ih)  # all time steps at once: (L, N, G*H)
                state = tuple(s[layer * directions + d] for s in states)
                steps = [None] * length
                order = range(length - 1, -1, -1) if d == 1 else range(length)
                for t in order:
                    state = self._step(gates_x[t], state, w_hh, b_hh, w_hr)
                    steps[t] = state[0]
                outs.append(rg.stack(steps, axis=0) if length else
                            rg.broadcast_to(rg.constant(np.zeros((), x.dtype)), shape=(0, batch, w_hh.shape[1])))
                for k, s in enumerate(state):
                    finals[k].append(s)
            layer_in = outs[0] if directions == 1 else rg.concat(outs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = dropout(layer_in, self.dropout, True, self.rng)
        out = layer_in
        finals = [rg.stack(f, axis=0) for f in finals]
        if unbatched:
            out, finals = rg.squeeze(out, 1), [rg.squeeze(f, 1) for f in finals]
        elif self.batch_first:
            out = rg.transpose(out, (1, 0, 2))
        return out, (tuple(finals) if self.mode == "LSTM" else finals[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTM(_RNNBase):
    """``torch.nn.LSTM``: ``forward(x, (h_0, c_0)=None) -> (output, (h_n, c_n))``."""

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 dtype="float32"):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size,
                         dtype=dtype)


class GRU(_RNNBase):
    """``torch.nn.GRU``: ``forward(x, h_0=None) -> (output, h_n)``."""

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype="float32"):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype=dtype)


class RNN(_RNNBase):
    """``torch.nn.RNN`` (Elman, ``nonlinearity`` tanh or relu): ``forward(x, h_0=None) -> (output, h_n)``."""

    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype="float32"):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         nonlinearity=nonlinearity, dtype=dtype)


class _CellBase(Module):
    """``torch.nn.{LSTM,GRU,RNN}Cell``: one step; parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""

    gates, mode = 4, "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype="float32"):
        super().__init__()
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        bound = 1.0 / math.sqrt(hidden_size)
        g = self.gates * hidden_size
        for name, shape in (("weight_ih", (g, input_size)), ("weight_hh", (g, hidden_size)),
                            ("bias_ih", (g,)), ("bias_hh", (g,))):
            if bias or name.startswith("weight"):
                self.register_parameter(name, init.uniform(shape, -bound, bound, dtype=dtype))
            else:
                self.register_parameter(name, None)

    def forward(self, x: Tensor, hx=None):
        unbatched = x.ndim == 1
        if unbatched:
            x = rg.unsqueeze(x, 0)
        if x.ndim != 2 or x.shape[-1] != self.input_size:
            raise shape_error(type(self).__name__, f"input must be (N, {self.input_size}) or ({self.input_size},)", x)
        zeros = rg.broadcast_to(rg.constant(np.zeros((), x.dtype)), shape=(x.shape[0], self.hidden_size))
        if hx is None:
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        elif unbatched:
            hx = tuple(rg.unsqueeze(h, 0) for h in hx) if self.mode == "LSTM" else rg.unsqueeze(hx, 0)
        gx = _linear(x, self.weight_ih, self.bias_ih)
        if self.mode == "LSTM":
            out = lstm_cell(gx, hx[0], hx[1], self.weight_hh, self.bias_hh)
            return tuple(rg.squeeze(o, 0) for o in out) if unbatched else out
        cell = gru_cell(gx, hx, self.weight_hh, self.bias_hh) if self.mode == "GRU" else \
            rnn_cell(gx, hx, self.weight_hh, self.bias_hh, self.nonlinearity)
        return rg.squeeze(cell, 0) if unbatched else cell


class LSTMCell(_CellBase):
    """``torch.nn.LSTMCell``: ``forward(x, (h, c)=None) -> (h', c')``."""

    gates, mode = 4, "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype="float32"):
        super().__init__(input_size, hidden_size, bias, dtype=dtype)


class GRUCell(_CellBase):
    """``torch.nn.GRUCell``: ``forward(x, h=None) -> h'``."""

    gates, mode = 3, "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype="float32"):
        super().__init__(input_size, hidden_size, bias, dtype=dtype)


class RNNCell(_CellBase):
    """``torch.nn.RNNCell``: ``forward(x, h=None) -> h'``."""

    gates, mode = 1, "RNN"
