"""Choosing the WebGPU implementation (wgpu-native or Dawn) and bridging their WGSL dialects."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rustyasg.wgpu import webgpu
from rustyasg.wgpu.device import get_context

BOTH = {"native": True, "dawn": True}


@pytest.mark.parametrize("requested,available,better,expected", [
    ("native", BOTH, True, "native"),
    ("dawn", BOTH, False, "dawn"),
    ("auto", BOTH, True, "dawn"),
    ("auto", BOTH, False, "native"),
    ("auto", {"native": True, "dawn": False}, True, "native"),
    ("auto", {"native": False, "dawn": True}, False, "dawn"),
    ("", BOTH, False, "native"),
    (" Dawn ", BOTH, False, "dawn"),
])
def test_choice(requested, available, better, expected):
    asked = []

    def dawn_is_better():
        asked.append(1)
        return better

    assert webgpu.choose_implementation(requested, available, dawn_is_better) == expected
    # The (slow) adapter probe only runs when auto has both to choose from.
    assert bool(asked) == (requested.strip().lower() in ("", "auto") and all(available.values()))


@pytest.mark.parametrize("requested,available,message", [
    ("metal", BOTH, "not one of auto, native, dawn"),
    ("dawn", {"native": True, "dawn": False}, r"pip install rustyasg-wgpu\[dawn\]"),
    ("native", {"native": False, "dawn": True}, "RUSTYASG_WEBGPU=dawn"),
    ("auto", {"native": False, "dawn": False}, "no WebGPU implementation is installed"),
])
def test_bad_choices_say_what_to_do(requested, available, message):
    with pytest.raises(webgpu.WebGpuChoiceError, match=message):
        webgpu.choose_implementation(requested, available)


def test_dawn_needs_the_subgroups_directive_and_naga_refuses_it():
    body = "fn f(x: f32) -> f32 { return subgroupAdd(x); }"
    assert webgpu.adapt_wgsl(body, "dawn").startswith("enable subgroups;\n")
    assert webgpu.adapt_wgsl(body, "native") == body
    already = "enable subgroups;\n" + body
    assert webgpu.adapt_wgsl(already, "dawn") == already
    plain = "fn f(x: f32) -> f32 { return x; }  // subgroup-free"
    assert webgpu.adapt_wgsl(plain, "dawn") == plain


def test_dawn_feature_names_are_also_known_by_the_native_names():
    feats = webgpu.canonical_features(["subgroups", "chromium-experimental-subgroup-matrix"])
    assert {"subgroup", "subgroups", "chromium-experimental-subgroup-matrix"} <= feats
    assert webgpu.canonical_features(["subgroup"]) == frozenset({"subgroup"})


def test_the_context_records_its_implementation(ctx):
    assert ctx.implementation == webgpu.implementation()
    assert ctx.api is webgpu.load(ctx.implementation)
    assert (ctx.implementation == "dawn") == ctx.cache_key.endswith("|dawn")
    assert get_context() is ctx


def test_the_environment_variable_picks_the_implementation_in_a_fresh_process(tmp_path):
    code = ("from rustyasg.wgpu import webgpu; print(webgpu.implementation())")
    env = {**os.environ, "RUSTYASG_WEBGPU": "native"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "native"
    env["RUSTYASG_WEBGPU"] = "vulkan"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "not one of auto, native, dawn" in out.stderr


def test_dawn_without_a_gpu_says_to_use_native():
    code = ("from rustyasg.wgpu.device import get_context, NoGpuAdapterError\n"
            "try:\n    ctx = get_context()\nexcept NoGpuAdapterError as exc:\n    print('ERR', exc)\n"
            "else:\n    print('OK', ctx.implementation, ctx.is_software)\n")
    env = {**os.environ, "RUSTYASG_WEBGPU": "dawn"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # A machine with a GPU runs Dawn on it; one without gets the error naming the way out.
    assert out.stdout.startswith("OK dawn False") or (
        out.stdout.startswith("ERR") and "RUSTYASG_WEBGPU=native" in out.stdout), out.stdout


def test_dawn_speed_toggles_are_on_by_default_and_the_environment_changes_them():
    code = ("from rustyasg.wgpu import webgpu\n"
            "from wgpudawn.backends.dawn._helpers import dawn_instance_extras as extras\n"
            "try:\n    webgpu.load('dawn')\nexcept webgpu.WebGpuChoiceError as exc:\n    print('ERR', exc)\n"
            "else:\n    print('OK', sorted(extras['device_toggles'][0]))\n")

    def started_with(setting):
        env = {k: v for k, v in os.environ.items() if k != "RUSTYASG_DAWN_TOGGLES"}
        if setting is not None:
            env["RUSTYASG_DAWN_TOGGLES"] = setting
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert started_with(None) == "OK ['disable_robustness', 'disable_workgroup_init']"
    assert started_with("-disable_robustness") == "OK ['disable_workgroup_init']"
    assert started_with("-disable_robustness,dump_shaders") == "OK ['disable_workgroup_init', 'dump_shaders']"
    assert started_with("disable_robustnes").startswith("ERR RUSTYASG_DAWN_TOGGLES names 'disable_robustnes'")
    assert started_with("-allow_unsafe_apis").startswith("ERR RUSTYASG_DAWN_TOGGLES: only the speed toggles")
