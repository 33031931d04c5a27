"""RNN / LSTM / GRU (and cells) against torch.nn with the same weights: outputs, final states and
the gradients of the input, the initial state and every parameter, on every backend.

One table of configurations; each backend compiles all of them into one function.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn

CONFIGS = [  # (class name, constructor kwargs, input shape, pass an initial state)
    ("LSTM", dict(input_size=3, hidden_size=4), (5, 2, 3), False),
    ("LSTM", dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=True), (2, 4, 3), True),
    ("LSTM", dict(input_size=3, hidden_size=5, proj_size=2, bias=False), (3, 2, 3), True),
    ("GRU", dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True), (4, 2, 3), True),
    ("GRU", dict(input_size=2, hidden_size=3, batch_first=True), (1, 3, 2), False),
    ("RNN", dict(input_size=3, hidden_size=4, nonlinearity="relu", num_layers=2), (4, 2, 3), True),
    ("LSTM", dict(input_size=3, hidden_size=2), (4, 3), False),  # unbatched
    ("LSTMCell", dict(input_size=3, hidden_size=4), (2, 3), True),
    ("GRUCell", dict(input_size=3, hidden_size=4), (2, 3), True),
    ("RNNCell", dict(input_size=3, hidden_size=4), (3,), False),
]
TOL = {"reference": (1e-10, 1e-11), "cpu": (2e-4, 2e-5), "wgpu": (2e-4, 2e-5)}


def _initial_state(name, module, x_shape, rng):
    """Random (h0[, c0]) for the configuration, in torch's layout."""
    if name.endswith("Cell"):
        batch = x_shape[:-1]
        shapes = [batch + (module.hidden_size,)] * (2 if name == "LSTMCell" else 1)
    else:
        d = 2 if module.bidirectional else 1
        batch = () if len(x_shape) == 2 else (x_shape[0] if module.batch_first else x_shape[1],)
        out = module.proj_size if name == "LSTM" and module.proj_size else module.hidden_size
        shapes = [(module.num_layers * d,) + batch + (out,)]
        if name == "LSTM":
            shapes.append((module.num_layers * d,) + batch + (module.hidden_size,))
    return [rng.standard_normal(s) for s in shapes]


def _outputs(name, result):
    if name == "LSTMCell":
        return list(result)
    if name.endswith("Cell"):
        return [result]
    out, state = result
    return [out] + (list(state) if isinstance(state, tuple) else [state])


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_recurrent_layers_match_torch(backend):
    dt = np.float64 if backend == "reference" else np.float32
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    feeds, inputs, outs, wrt, expected, expected_grads, loss = [], [], [], [], [], [], None
    for k, (name, kwargs, x_shape, with_state) in enumerate(CONFIGS):
        theirs = getattr(torch.nn, name)(**kwargs).double()
        ours = getattr(nn, name)(**kwargs, dtype=dt)
        assert list(ours.state_dict()) == list(theirs.state_dict())  # names and PyTorch's order
        ours.load_state_dict({n: v.numpy().astype(dt) for n, v in theirs.state_dict().items()})
        x = rng.standard_normal(x_shape)
        states = _initial_state(name, theirs, x_shape, rng) if with_state else []
        arrays = [x] + states
        ins = [rg.input(a.shape, dt, name=f"c{k}_{i}") for i, a in enumerate(arrays)]
        hx = None if not states else (tuple(ins[1:]) if name in ("LSTM", "LSTMCell") else ins[1])
        got = _outputs(name, ours(ins[0], hx))
        tin = [torch.tensor(a, requires_grad=True) for a in arrays]
        thx = None if not states else (tuple(tin[1:]) if name in ("LSTM", "LSTMCell") else tin[1])
        want = _outputs(name, theirs(tin[0], thx) if thx is not None else theirs(tin[0]))
        assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want], name
        cots = [rng.standard_normal(tuple(w.shape)) for w in want]
        sum(torch.sum(w * torch.tensor(c)) for w, c in zip(want, cots)).backward()
        for g, c in zip(got, cots):
            piece = rg.sum(g * rg.constant(c.astype(dt)))
            loss = piece if loss is None else loss + piece
        params = ours.named_parameters()
        wrt += ins + [params[n] for n in params]
        expected_grads += [t.grad.numpy() for t in tin] + [p.grad.numpy() for _, p in theirs.named_parameters()]
        feeds += [a.astype(dt) for a in arrays]
        inputs += ins
        outs += got
        expected += [w.detach().numpy() for w in want]
    grads = rg.grad(loss, wrt)
    results = rg.function(inputs, outs + list(grads), backend=backend)(*feeds)
    rtol, atol = TOL[backend]
    for i, (got, want) in enumerate(zip(results, expected + expected_grads)):
        what = "output" if i < len(outs) else f"gradient {i - len(outs)}"
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol * (1 if i < len(outs) else 10),
                                   atol=atol * (1 if i < len(outs) else 10), err_msg=f"{what} on {backend}")


def test_training_dropout_between_layers_needs_an_rng_and_changes_the_output():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    lstm.set_rng(0)
    x = rg.input((5, 2, 3), name="x")
    a = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    train_out = rg.function([x], lstm(x)[0], backend="cpu")(a)
    lstm.eval()
    eval_out = rg.function([x], lstm(x)[0], backend="cpu")(a)
    assert not np.allclose(train_out, eval_out)


@pytest.mark.parametrize("make, call, message", [
    (lambda: nn.LSTM(3, 4), lambda m: m(rg.input((5, 2, 4), name="x")), "input must be"),
    (lambda: nn.GRU(3, 4, num_layers=2), lambda m: m(rg.input((5, 2, 3), name="x"), rg.input((1, 2, 4), name="h")),
     "initial state shape"),
    (lambda: nn.LSTM(3, 4, proj_size=4), None, "proj_size"),
    (lambda: nn.RNN(3, 4, nonlinearity="gelu"), None, "nonlinearity"),
])
def test_mistakes_are_named_errors(make, call, message):
    with pytest.raises((rg.RustyASGError, ValueError), match=message):
        m = make()
        call(m)
