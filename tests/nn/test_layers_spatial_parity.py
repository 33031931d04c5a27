"""1-D/3-D convolutions and pooling, unpooling, interpolation, pixel shuffle, unfold/fold, padding,
group/instance norm and grouped-query attention against PyTorch: values and gradients (of the
inputs and the weights), on every backend, one compiled function per backend.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn
import rustyasg.nn.functional as F
from core_tables import load_core_module




parity = load_core_module("torch_parity_table")
Case = parity.Case
R = np.random.default_rng(5)


def r(*shape):
    return R.standard_normal(shape)


def _pair(name, ours, theirs, *inputs, grad=True):
    return Case(name, list(inputs), ours, theirs, grad=grad)


def _pool_unpool(ours_pool, ours_unpool, theirs_pool, theirs_unpool, k, **kw):
    return (lambda x: ours_unpool(*ours_pool(x, k, return_indices=True, **kw), k, **kw),
            lambda t: theirs_unpool(*theirs_pool(t, k, return_indices=True, **kw), k, **kw))


IMG = r(2, 3, 6, 7)
VOL = r(2, 4, 5, 6, 7)
SEQ = r(2, 4, 9)
BIG_IMG = r(2, 3, 13, 17)
EDGE_IMG, EDGE_SEQ, EDGE_VOL = IMG.copy(), SEQ.copy(), VOL.copy()
EDGE_IMG[0, 0, 0, :4] = EDGE_SEQ[0, 0, 2:6] = EDGE_VOL[0, 0, 1, 2, 1:5] = [np.inf, -np.inf, np.nan, 0.0]

CASES = [
    # convolutions (the weight's gradient is checked too)
    _pair("conv1d", lambda x, w: F.conv1d(x, w, None, 2, 1, 1, 2), lambda x, w: TF.conv1d(x, w, None, 2, 1, 1, 2),
          SEQ, r(6, 2, 3)),
    _pair("conv1d_same_even", lambda x, w, b: F.conv1d(x, w, b, padding="same", dilation=2),
          lambda x, w, b: TF.conv1d(x, w, b, padding="same", dilation=2), SEQ, r(5, 4, 4), r(5)),
    _pair("conv2d_asymmetric", lambda x, w: F.conv2d(x, w, None, 1, ((1, 2), (0, 3))),
          lambda x, w: TF.conv2d(TF.pad(x, (0, 3, 1, 2)), w), IMG, r(4, 3, 2, 3)),
    _pair("unflatten_module", lambda x: nn.Unflatten(2, (2, 3))(x), lambda t: torch.nn.Unflatten(2, (2, 3))(t),
          IMG[:, :, :, :6].reshape(2, 3, 6, 6)[:, :, :, 0]),
    _pair("conv3d", lambda x, w: F.conv3d(x, w, None, (2, 1, 2), (1, 0, 1), (1, 2, 1), 2),
          lambda x, w: TF.conv3d(x, w, None, (2, 1, 2), (1, 0, 1), (1, 2, 1), 2), VOL, r(6, 2, 3, 2, 3)),
    _pair("conv3d_same", lambda x, w, b: F.conv3d(x, w, b, padding="same"),
          lambda x, w, b: TF.conv3d(x, w, b, padding="same"), VOL[:1], r(3, 4, 2, 3, 4), r(3)),
    _pair("conv_transpose1d", lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1, 2),
          lambda x, w, b: TF.conv_transpose1d(x, w, b, 2, 1, 1, 2), SEQ[:, :, :5], r(4, 3, 3), r(6)),
    _pair("conv_transpose3d", lambda x, w: F.conv_transpose3d(x, w, None, (2, 1, 2), (1, 0, 1), (1, 0, 0), 2,
                                                               (1, 2, 1)),
          lambda x, w: TF.conv_transpose3d(x, w, None, (2, 1, 2), (1, 0, 1), (1, 0, 0), 2, (1, 2, 1)),
          r(1, 4, 3, 4, 3), r(4, 3, 3, 2, 3)),
    # pooling
    _pair("max_pool1d", lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True),
          lambda t: TF.max_pool1d(t, 3, 2, 1, ceil_mode=True), SEQ),
    _pair("max_pool1d_indices", lambda x: F.max_pool1d(x, 2, return_indices=True)[1],
          lambda t: TF.max_pool1d(t, 2, return_indices=True)[1], SEQ, grad=False),
    _pair("avg_pool1d", lambda x: F.avg_pool1d(x, 3, 2, 1, True, False),
          lambda t: TF.avg_pool1d(t, 3, 2, 1, True, False), SEQ),
    _pair("max_pool3d", lambda x: F.max_pool3d(x, (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True),
          lambda t: TF.max_pool3d(t, (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True), VOL),
    _pair("avg_pool3d", lambda x: F.avg_pool3d(x, (3, 2, 3), (2, 2, 1), (1, 1, 1), True, False),
          lambda t: TF.avg_pool3d(t, (3, 2, 3), (2, 2, 1), (1, 1, 1), True, False), VOL),
    _pair("avg_pool3d_divisor", lambda x: F.avg_pool3d(x, 2, divisor_override=3),
          lambda t: TF.avg_pool3d(t, 2, divisor_override=3), VOL),
    _pair("max_unpool2d", *_pool_unpool(F.max_pool2d, F.max_unpool2d, TF.max_pool2d, TF.max_unpool2d, 2), IMG[:, :, :6, :6]),
    _pair("maxpool2d_module_unpool", lambda x: nn.MaxUnpool2d(2)(*nn.MaxPool2d(2, return_indices=True)(x)),
          lambda t: torch.nn.MaxUnpool2d(2)(*torch.nn.MaxPool2d(2, return_indices=True)(t)), IMG[:, :, :6, :6]),
    _pair("max_unpool1d", *_pool_unpool(F.max_pool1d, F.max_unpool1d, TF.max_pool1d, TF.max_unpool1d, 3), SEQ),
    # interpolation (forward on NaN/inf too)
    *[_pair(f"interpolate_{mode}_{ac}_{sz}", lambda x, m=mode, a=ac, s=sz: F.interpolate(x, **s, mode=m, align_corners=a),
            lambda t, m=mode, a=ac, s=sz: TF.interpolate(t, **s, mode=m, align_corners=a), IMG)
      for mode, ac, sz in (("nearest", None, {"scale_factor": 2}), ("nearest", None, {"size": (4, 9)}),
                           ("nearest-exact", None, {"size": (9, 5)}), ("bilinear", False, {"scale_factor": 1.5}),
                           ("bilinear", True, {"size": (4, 11)}), ("bicubic", False, {"size": (9, 5)}),
                           ("bicubic", True, {"scale_factor": 2}), ("area", None, {"size": (4, 3)}),
                           ("area", None, {"size": (3, 7)}))],
    # antialiasing (PyTorch's filters stretched when downsampling; upsampling and align_corners too)
    *[_pair(f"interpolate_antialias_{mode}_{ac}_{sz}",
            lambda x, m=mode, a=ac, s=sz: F.interpolate(x, **s, mode=m, align_corners=a, antialias=True),
            lambda t, m=mode, a=ac, s=sz: TF.interpolate(t, **s, mode=m, align_corners=a, antialias=True), BIG_IMG)
      for mode, ac, sz in (("bilinear", False, {"scale_factor": 0.5}), ("bilinear", True, {"size": (5, 4)}),
                           ("bilinear", False, {"size": (1, 7)}), ("bicubic", False, {"size": (4, 6)}),
                           ("bicubic", True, {"scale_factor": (0.3, 1.5)}), ("bicubic", False, {"size": (21, 2)}))],
    _pair("interpolate_linear", lambda x: F.interpolate(x, size=13, mode="linear"),
          lambda t: TF.interpolate(t, size=13, mode="linear"), SEQ),
    _pair("interpolate_trilinear", lambda x: F.interpolate(x, scale_factor=(1.5, 0.5, 2), mode="trilinear"),
          lambda t: TF.interpolate(t, scale_factor=(1.5, 0.5, 2), mode="trilinear"), VOL),
    _pair("interpolate_edges", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"),
          lambda t: TF.interpolate(t, scale_factor=2, mode="nearest"), EDGE_IMG, grad=False),
    # inf, -inf and NaN reach only the outputs whose taps read them, as in torch's kernels
    *[_pair(f"interpolate_edges_{mode}_{aa}_{ac}_{sz}", lambda x, m=mode, s=sz, a=ac, aa=aa: F.interpolate(
            x, **s, mode=m, align_corners=a, antialias=aa),
            lambda t, m=mode, s=sz, a=ac, aa=aa: TF.interpolate(t, **s, mode=m, align_corners=a, antialias=aa),
            {1: EDGE_SEQ, 2: EDGE_IMG, 3: EDGE_VOL}[len(next(iter(sz.values())))], grad=False)
      for mode, aa, ac, sz in (("bilinear", False, False, {"scale_factor": (1.5, 1.5)}),
                               ("bilinear", False, True, {"size": (4, 11)}),
                               ("bicubic", False, False, {"size": (9, 5)}), ("bicubic", False, True, {"size": (3, 14)}),
                               ("area", False, None, {"size": (4, 3)}), ("area", False, None, {"size": (9, 10)}),
                               ("area", False, None, {"size": (2, 1)}),
                               ("bilinear", True, False, {"size": (3, 3)}),
                               ("bilinear", True, False, {"size": (9, 11)}),
                               ("bicubic", True, False, {"size": (4, 3)}), ("bicubic", True, True, {"size": (10, 13)}),
                               ("linear", False, False, {"size": (13,)}), ("linear", False, True, {"size": (5,)}),
                               ("trilinear", False, False, {"scale_factor": (1.5, 0.5, 2.0)}),
                               ("trilinear", False, True, {"size": (3, 7, 4)}))],
    _pair("upsample_module", lambda x: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(x),
          lambda t: torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(t), IMG),
    # rearranging
    _pair("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), lambda t: TF.pixel_shuffle(t, 2), r(2, 8, 3, 4)),
    _pair("pixel_unshuffle", lambda x: F.pixel_unshuffle(x, 3), lambda t: TF.pixel_unshuffle(t, 3), r(1, 2, 6, 9)),
    _pair("unfold", lambda x: F.unfold(x, (2, 3), (1, 2), (1, 0), (2, 1)),
          lambda t: TF.unfold(t, (2, 3), (1, 2), (1, 0), (2, 1)), IMG),
    _pair("fold", lambda x: F.fold(x, (6, 7), (2, 3), (1, 2), (1, 0), (2, 1)),
          lambda t: TF.fold(t, (6, 7), (2, 3), (1, 2), (1, 0), (2, 1)), r(2, 18, 12)),
    _pair("pad_torch_order", lambda x: F.pad(x, (1, -2, 2, 0), mode="replicate"),
          lambda t: TF.pad(t, (1, -2, 2, 0), mode="replicate"), IMG),
    _pair("pad_module", lambda x: nn.ReflectionPad2d((1, 2, 0, 3))(x),
          lambda t: torch.nn.ReflectionPad2d((1, 2, 0, 3))(t), IMG),
    # normalization
    _pair("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b, 1e-3),
          lambda x, w, b: TF.group_norm(x, 2, w, b, 1e-3), r(2, 4, 3, 5), r(4), r(4)),
    _pair("instance_norm", lambda x, w, b: F.instance_norm(x, w, b), lambda x, w, b: TF.instance_norm(x, weight=w,
                                                                                                     bias=b),
          r(2, 3, 7), r(3), r(3)),
    # attention
    _pair("sdpa_gqa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, enable_gqa=True), r(2, 4, 5, 8), r(2, 2, 7, 8),
          r(2, 2, 7, 8)),
    _pair("sdpa_gqa_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
          r(1, 6, 5, 4), r(1, 3, 5, 4), r(1, 3, 5, 4)),
]


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_spatial_layers_match_torch(backend):
    parity.check_cases(CASES, backend)


MODULES = [  # (ours, theirs) with the same constructor arguments
    ("Conv1d", dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, padding_mode="circular", padding=2)),
    ("Conv3d", dict(in_channels=2, out_channels=4, kernel_size=(1, 3, 2), stride=2, padding=1)),
    ("ConvTranspose1d", dict(in_channels=4, out_channels=2, kernel_size=3, stride=2, output_padding=1)),
    ("ConvTranspose3d", dict(in_channels=2, out_channels=2, kernel_size=2, stride=2)),
    ("Conv2d", dict(in_channels=2, out_channels=4, kernel_size=3, padding="same", padding_mode="reflect")),
    ("GroupNorm", dict(num_groups=3, num_channels=6)),
    ("InstanceNorm2d", dict(num_features=3, affine=True)),
]


@pytest.mark.parametrize("name, kwargs", MODULES, ids=[m[0] for m in MODULES])
def test_modules_have_torch_state_dict_keys_shapes_and_init_bounds(name, kwargs):
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    want = {k: tuple(v.shape) for k, v in theirs.state_dict().items() if not k.startswith("running")}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == want
    if name.startswith("Conv"):  # kaiming_uniform(a=sqrt(5)) and the bias: both U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        w = theirs.weight
        bound = 1.0 / np.sqrt(w.shape[1] * np.prod(w.shape[2:]))
        for k, v in ours.state_dict().items():
            assert np.abs(v).max() <= bound and float(theirs.state_dict()[k].abs().max()) <= bound, k
        assert np.abs(ours.state_dict()["weight"]).max() > 0.8 * bound  # spread over the whole range
    else:  # affine norms start at weight 1, bias 0
        for k, v in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    spatial = {"Conv1d": (2, 4, 8), "Conv2d": (1, 2, 5, 6), "Conv3d": (1, 2, 4, 5, 4), "ConvTranspose1d": (2, 4, 5),
               "ConvTranspose3d": (1, 2, 2, 3, 2), "GroupNorm": (2, 6, 5), "InstanceNorm2d": (2, 3, 4, 4)}[name]
    x = R.standard_normal(spatial).astype(np.float32)
    got = rg.function([xi := rg.input(x.shape, name="x")], ours(xi), backend="cpu")(x)
    np.testing.assert_allclose(got, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv3d(rg.input((1, 3, 4, 4, 4)), rg.input((2, 2, 3, 3, 3))), "3 channels"),
    (lambda: F.conv1d(rg.input((1, 2, 5)), rg.input((2, 2, 3)), stride=2, padding="same"), "stride 1"),
    (lambda: F.interpolate(rg.input((1, 1, 4)), scale_factor=2, mode="bilinear"), "needs 2 spatial"),
    (lambda: F.interpolate(rg.input((1, 1, 4)), size=3, scale_factor=2), "exactly one"),
    (lambda: F.interpolate(rg.input((1, 1, 4, 4)), size=3, mode="nearest", antialias=True), "bilinear and bicubic"),
    (lambda: F.pixel_shuffle(rg.input((1, 6, 2, 2)), 2), "divisible"),
    (lambda: F.group_norm(rg.input((2, 6, 3)), 4), "divisible by num_groups"),
    (lambda: F.scaled_dot_product_attention(rg.input((1, 3, 2, 4)), rg.input((1, 2, 2, 4)), rg.input((1, 2, 2, 4)),
                                            enable_gqa=True), "multiple of key/value heads"),
    (lambda: F.pad(rg.input((2, 3)), (1, 1, 1, 1, 1, 1)), "at most 2 \\* rank"),
])
def test_mistakes_are_named_errors(call, message):
    with pytest.raises(rg.RustyASGError, match=message) as info:
        call()
    assert "test_layers_spatial_parity.py" in str(info.value)  # the user's line


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_instance_norm_running_statistics_follow_torch(backend):
    ours, theirs = nn.InstanceNorm1d(3, momentum=0.2, track_running_stats=True, affine=True), \
        torch.nn.InstanceNorm1d(3, momentum=0.2, track_running_stats=True, affine=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = rg.input((2, 3, 6), name="x")
    step = rg.function([x], ours(x), updates=ours.state_updates(), backend=backend)
    for seed in range(2):
        a = np.random.default_rng(seed).standard_normal((2, 3, 6)).astype(np.float32) * (seed + 1)
        np.testing.assert_allclose(step(a), theirs(torch.tensor(a)).detach().numpy(), rtol=1e-4, atol=1e-5)
    state = ours.state_dict()  # read back from the backend
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(state[k], theirs.state_dict()[k].numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    ours.eval(), theirs.eval()
    a = np.random.default_rng(9).standard_normal((2, 3, 6)).astype(np.float32)
    got = rg.function([x], ours(x), backend=backend)(a)
    np.testing.assert_allclose(got, theirs(torch.tensor(a)).detach().numpy(), rtol=1e-4, atol=1e-5)
