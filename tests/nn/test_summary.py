"""summary(): every layer with its output shape and parameter count, traced without compiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rustyasg.nn as nn


def test_layers_shapes_and_counts_match_pytorch():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 8, 32), nn.ReLU()), nn.Linear(32, 5))
    twin = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(512, 32),
                                                                          torch.nn.ReLU()), torch.nn.Linear(32, 5))
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=name: shapes.setdefault(n, tuple(o.shape)) and None)
             for name, m in twin.named_modules()]
    twin(torch.zeros(4, 3, 16, 16))
    for h in hooks:
        h.remove()
    result = nn.summary(model, (4, 3, 16, 16))
    by_name = {r.name: r for r in result.rows}
    assert [r.name for r in result.rows] == [name for name, _ in twin.named_modules()]
    for name, m in twin.named_modules():
        assert by_name[name].output_shapes == [str(shapes[name])], name
        assert by_name[name].params == sum(p.numel() for p in m.parameters()), name
    assert result.total_params == sum(p.numel() for p in twin.parameters())
    assert result.buffer_elements == sum(b.numel() for b in twin.buffers())
    text = str(model.summary(np.zeros((4, 3, 16, 16), np.float32)))
    assert "├─ 4: Sequential    (4, 32)          16,416" in text
    assert f"Total params: {result.total_params:,}" in text and "└─ 5: Linear" in text
    assert model.training and not any(m._updates for m in model.modules() if hasattr(m, "_updates"))


def test_symbolic_batch_no_inputs_and_bad_inputs():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    rows = nn.summary(model, (None, 3)).rows
    assert rows[1].output_shapes == ["(x.0, 4)"]
    assert nn.summary(model).rows[1].output_shapes == [] and "--" in str(nn.summary(model))
    with pytest.raises(TypeError, match="shape tuple, a numpy array or a symbolic tensor"):
        nn.summary(model, "3")
