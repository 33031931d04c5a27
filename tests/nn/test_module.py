"""Module system: registration, PyTorch naming, state dicts, modes, dtype conversion, RNG states, containers, init."""

import math

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn import init


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = rg.variable(np.ones(4, np.float32))
        self.register_buffer("count", np.zeros((), np.int64))
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.drop(self.fc(x)) * self.scale


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        self.scale = torch.nn.Parameter(torch.ones(4))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.drop = torch.nn.Dropout(0.1)


def _nested():
    return nn.Sequential(Block(), nn.ReLU(), nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2)]),
                         nn.ModuleDict({"head": nn.Linear(2, 1)}))


def _torch_nested():
    return torch.nn.Sequential(TorchBlock(), torch.nn.ReLU(),
                               torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)]),
                               torch.nn.ModuleDict({"head": torch.nn.Linear(2, 1)}))


def test_names_and_order_match_pytorch():
    ours, theirs = _nested(), _torch_nested()
    assert list(ours.named_parameters()) == [n for n, _ in theirs.named_parameters()]
    assert list(ours.named_buffers()) == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())
    assert all(p.trainable for p in ours.parameters()) and not any(b.trainable for b in ours.buffers())


def test_state_dict_round_trip_with_pytorch():
    ours, theirs = _nested(), _torch_nested()
    ours.load_state_dict(theirs.state_dict())  # torch tensors are accepted directly
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
    for p in theirs.parameters():
        p.data.normal_()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())


def test_state_dict_is_a_copy_and_dtype_is_kept():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    sd["weight"][:] = 7
    assert not (m.weight.value() == 7).any()
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert m.weight.dtype == np.float32 and (m.weight.value() == 1).all()


def test_load_state_dict_errors_name_keys_and_shapes():
    m = _nested()
    good = m.state_dict()
    bad = dict(good)
    bad["0.fc.weight"] = np.zeros((5, 3))
    before = m.state_dict()
    with pytest.raises(nn.StateDictError, match=r"'0.fc.weight' has shape \(5, 3\) .* but \(4, 3\)"):
        m.load_state_dict(bad)
    for k in before:  # nothing was assigned
        np.testing.assert_array_equal(m.state_dict()[k], before[k])
    missing = {k: v for k, v in good.items() if k != "3.head.bias"}
    missing["extra.w"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"missing keys: 3.head.bias \(1,\); unexpected keys: extra.w \(3,\)"):
        m.load_state_dict(missing)
    assert m.load_state_dict(missing, strict=False) == (["3.head.bias"], ["extra.w"])


def test_assignment_rules():
    m = nn.Module()
    m.w = rg.variable(np.ones(2, np.float32))
    m.w = rg.variable(np.zeros(2, np.float32), trainable=False)  # re-registered as a buffer
    assert list(m.named_parameters()) == [] and list(m.named_buffers()) == ["w"]
    m.register_parameter("b", None)
    assert m.b is None and list(m.state_dict()) == ["w"]
    del m.w
    assert list(m.state_dict()) == []
    with pytest.raises(ValueError, match="non-trainable"):
        m.register_buffer("x", rg.variable(np.zeros(1)))
    with pytest.raises(TypeError, match="expected a Module"):
        m.add_module("x", 3)

    class Forgot(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(AttributeError, match="super"):
        Forgot()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_tied_weights_appear_once_in_parameters_and_twice_in_state_dict():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    m = nn.Sequential(a, b)
    assert list(m.named_parameters()) == ["0.weight", "0.bias", "1.bias"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    m.to("float64")
    assert m[0].weight is m[1].weight and m[0].weight.dtype == np.float64


def test_to_dtype_keeps_values_order_and_integer_buffers():
    m = Block()
    before = m.state_dict()
    m.double()
    after = m.state_dict()
    assert list(after) == list(before)
    assert after["fc.weight"].dtype == np.float64 and after["count"].dtype == np.int64
    np.testing.assert_array_equal(after["fc.weight"], before["fc.weight"].astype(np.float64))
    assert m.float().fc.weight.dtype == np.float32


def test_train_eval_modes_propagate_and_change_the_graph():
    m = _nested()
    assert all(x.training for x in m.modules())
    assert m.eval() is m and not any(x.training for x in m.modules())
    x = rg.input((None, 3), name="x")
    ops_eval = {t.op for t in rg.graph.toposort([m[0](x)])}
    m.train()
    ops_train = {t.op for t in rg.graph.toposort([m[0](x)])}
    assert "random_uniform" in ops_train and "random_uniform" not in ops_eval


def test_rng_states_shared_model_wide_and_kept_out_of_state_dict():
    m = _nested()
    assert m.rng_states() == {}
    m[0].drop(rg.input((2, 4), name="x"))  # first use creates the layer's own stream
    assert list(m.rng_states()) == ["0.drop.rng"]
    m.set_rng(7)
    states = m.rng_states()
    assert list(states) == ["rng"] and states["rng"] is m[0].drop.rng.state
    assert int(states["rng"].value()) == 7 << 32
    assert not any("rng" in k for k in m.state_dict())
    m.rng = rg.RNG(9)
    assert m[0].drop.rng is m.rng


def test_state_updates_collected_and_cleared():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", np.zeros((), np.int64))

        def forward(self, x):
            if self.training:
                self.record_update(self.n, self.n + 1)
            else:
                self.clear_updates()
            return x

    m = nn.Sequential(nn.Identity(), Counter())
    x = rg.input((2,), name="x")
    m(x)
    ups = m.state_updates()
    assert list(ups) == [m[1].n]
    step = rg.function([x], x * 2.0, updates=ups, backend="reference")
    step(np.ones(2, np.float32)), step(np.ones(2, np.float32))
    assert int(m[1].n.value()) == 2
    m.eval()(x)
    assert m.state_updates() == {}


def test_containers():
    layers = [nn.Linear(2, 2) for _ in range(4)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 4 and seq[-1] is layers[3] and list(seq) == layers
    sub = seq[1:3]
    assert isinstance(sub, nn.Sequential) and list(sub.named_parameters())[0] == "1.weight"
    seq[0] = nn.Identity()
    assert isinstance(seq[0], nn.Identity) and "0.weight" not in seq.state_dict()
    with pytest.raises(IndexError, match="out of range"):
        seq[4]
    named = nn.Sequential({"first": nn.Linear(2, 3), "act": nn.Tanh()})
    assert list(named.state_dict()) == ["first.weight", "first.bias"]
    ml = nn.ModuleList()
    ml.append(nn.Linear(1, 1)).extend([nn.Linear(1, 2)])
    ml.insert(0, nn.Linear(1, 3))
    assert [m.out_features for m in ml] == [3, 1, 2] and list(ml.state_dict())[0] == "0.weight"
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.Tanh()
    assert "b" in md and md.keys() == ["a", "b"] and len(md) == 2
    del md["a"]
    assert list(md) == ["b"]
    assert "(0): Identity()" in repr(seq)


def test_sequential_forward_matches_torch(parity, rng):
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    ours = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    parity(ours, theirs, [rng.standard_normal((4, 3))], "float64")


# --- initializers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,fans", [((30, 20), (20, 30)), ((8, 4, 3, 3), (36, 72)), ((5, 7, 2), (14, 10))])
def test_fans_match_pytorch(shape, fans):
    assert init.fan_in_and_fan_out(shape) == fans == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError, match="rank >= 2"):
        init.fan_in_and_fan_out((3,))


@pytest.mark.parametrize("name,param", [("linear", None), ("relu", None), ("tanh", None), ("leaky_relu", 0.2),
                                        ("leaky_relu", None), ("selu", None), ("conv2d", None)])
def test_gains_match_pytorch(name, param):
    assert math.isclose(init.calculate_gain(name, param), torch.nn.init.calculate_gain(name, param))


INITS = [
    ("uniform", {"a": -0.5, "b": 1.5}), ("normal", {"mean": 0.3, "std": 0.7}),
    ("xavier_uniform", {"gain": 1.3}), ("xavier_normal", {"gain": 0.8}),
    ("kaiming_uniform", {"a": math.sqrt(5)}), ("kaiming_uniform", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal", {"nonlinearity": "relu"}), ("kaiming_normal", {"a": 0.1, "mode": "fan_out"}),
]


@pytest.mark.parametrize("name,kwargs", INITS)
def test_initializer_distributions_match_pytorch(name, kwargs):
    """Moments and range of our draws agree with PyTorch's on a large tensor."""
    shape = (256, 64, 3, 3)
    ours = getattr(init, name)(shape, generator=np.random.default_rng(0), **kwargs)
    torch.manual_seed(0)
    theirs = getattr(torch.nn.init, name + "_")(torch.empty(shape), **kwargs).numpy()
    assert ours.shape == shape and ours.dtype == np.float32
    assert abs(ours.std() - theirs.std()) < 0.01 * theirs.std()
    assert abs(ours.mean() - theirs.mean()) < 0.01 * theirs.std()
    if "uniform" in name:
        assert abs(ours.max() - theirs.max()) < 1e-3 * theirs.std() and abs(ours.min() - theirs.min()) < 1e-3 * theirs.std()


def test_in_place_initializers_and_seeding():
    v = rg.variable(np.zeros((4, 6), np.float64))
    init.ones_(v)
    assert (v.value() == 1).all() and v.value().dtype == np.float64
    init.constant_(v, 0.25)
    assert (v.value() == 0.25).all()
    init.manual_seed(42)
    a = init.xavier_uniform_(v).value()
    init.manual_seed(42)
    np.testing.assert_array_equal(init.xavier_uniform((4, 6), dtype="float64"), a)
    assert not (init.zeros((2, 2))).any()
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal((3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")
