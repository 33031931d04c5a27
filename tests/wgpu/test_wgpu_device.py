"""Adapter choice, device limits and features, synchronisation."""

import pytest

from rustyasg.wgpu.device import (
    ADAPTER_ENV, INSTALL_HINT, NoGpuAdapterError, adapter_summary, get_context, select_adapter_index,
)

INFOS = [
    {"device": "llvmpipe (LLVM 15)", "adapter_type": "CPU", "backend_type": "Vulkan", "vendor": "llvmpipe"},
    {"device": "Intel Iris Xe", "adapter_type": "IntegratedGPU", "backend_type": "Vulkan", "vendor": "Intel"},
    {"device": "NVIDIA H100", "adapter_type": "DiscreteGPU", "backend_type": "OpenGL", "vendor": ""},
    {"device": "NVIDIA H100", "adapter_type": "DiscreteGPU", "backend_type": "Vulkan", "vendor": "NVIDIA"},
]


def test_default_and_high_performance_prefer_discrete_vulkan():
    assert select_adapter_index(INFOS, None) == 3
    assert select_adapter_index(INFOS, "high-performance") == 3


def test_low_power_prefers_integrated():
    assert select_adapter_index(INFOS, "low-power") == 1


def test_substring_matches_name_vendor_backend_case_insensitively():
    assert select_adapter_index(INFOS, "LLVMpipe") == 0
    assert select_adapter_index(INFOS, "opengl") == 2
    assert select_adapter_index(INFOS, "h100") == 3  # the better-ranked of two matches


def test_unmatched_spec_lists_available_adapters():
    with pytest.raises(NoGpuAdapterError) as info:
        select_adapter_index(INFOS, "radeon")
    msg = str(info.value)
    assert "radeon" in msg and "Intel Iris Xe" in msg and ADAPTER_ENV in msg


def test_no_adapter_says_what_to_install():
    with pytest.raises(NoGpuAdapterError) as info:
        select_adapter_index([], None)
    assert "mesa-vulkan-drivers" in str(info.value) and str(info.value) == INSTALL_HINT


def test_adapter_summary():
    assert adapter_summary(INFOS[3]) == "NVIDIA H100 (DiscreteGPU) via Vulkan"


def test_context_has_device_and_raised_limits(ctx):
    assert ctx.device is not None and ctx.queue is not None
    assert ctx.limit("max-compute-workgroups-per-dimension") >= 65535
    # Asked at the adapter's maximum, not the WebGPU default of 8.
    assert ctx.limit("max-storage-buffers-per-shader-stage") == ctx.adapter.limits["max-storage-buffers-per-shader-stage"]
    assert ctx.limit("max-storage-buffer-binding-size") == ctx.adapter.limits["max-storage-buffer-binding-size"]
    if "shader-f16" in ctx.adapter.features:
        assert ctx.has("shader-f16")
    assert ctx.cache_key.startswith(ctx.name)


def test_context_is_shared_per_spec(ctx):
    assert get_context() is ctx


def test_env_var_selects_adapter(monkeypatch, ctx):
    monkeypatch.setenv(ADAPTER_ENV, ctx.name[:6])
    assert get_context().name == ctx.name
    monkeypatch.setenv(ADAPTER_ENV, "no-such-adapter-xyz")
    with pytest.raises(NoGpuAdapterError):
        get_context()


def test_synchronize_returns(ctx):
    ctx.synchronize()
    ctx.synchronize()
