"""Which WebGPU implementation the backend runs on: wgpu-native or Dawn.

Both speak wgpu-py's Python API: ``wgpu`` (wgpu-py on wgpu-native, naga
compiles the WGSL) and ``wgpudawn`` (the same API on Google's Dawn, the
implementation inside Chrome; Tint compiles the WGSL). Dawn reaches what
wgpu-native 0.32 cannot: tensor cores through
``chromium-experimental-subgroup-matrix`` and f16 on NVIDIA's Vulkan driver.

``RUSTYASG_WEBGPU`` chooses: ``native``, ``dawn``, or ``auto`` (the default):
Dawn when it is installed and offers a hardware adapter with subgroup
matrices, else wgpu-native when installed, else Dawn.

The two compilers read slightly different WGSL dialects; :func:`adapt_wgsl`
is the one place that bridges them.

Example::

    >>> choose_implementation("native", {"native": True, "dawn": True})
    'native'
    >>> choose_implementation("auto", {"native": True, "dawn": False})
    'native'
    >>> "enable subgroups;" in adapt_wgsl("fn f() { let s = subgroupAdd(1.0); }", "dawn")
    True
    >>> adapt_wgsl("fn f() { let s = subgroupAdd(1.0); }", "native").startswith("fn f")
    True
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import re
import sys
from types import ModuleType
from typing import Callable, Mapping

WEBGPU_ENV = "RUSTYASG_WEBGPU"
IMPLEMENTATIONS = {"native": "wgpu", "dawn": "wgpudawn"}  # name -> Python module

# Dawn toggles: "allow_unsafe_apis" unlocks experimental features (subgroup
# matrices); "vulkan_enable_f16_on_nvidia" lets Dawn offer shader-f16 on
# NVIDIA's Vulkan driver, which it withholds by default.
DAWN_TOGGLES = ("allow_unsafe_apis", "vulkan_enable_f16_on_nvidia")
# Dawn's bounds clamps on every buffer access and zeroing of workgroup memory at every
# dispatch cost time the generated kernels do not need: they check their own bounds and
# write shared memory before reading it (W5 on an H100: 36.61 -> 35.02 ms fp32, 29.30 ->
# 26.27 ms f16; the wgpu suite passes with both off). On by default.
DAWN_SPEED_TOGGLES = ("disable_robustness", "disable_workgroup_init")
# Comma-separated toggles to add, or, prefixed with "-", default ones to leave out
# ("-disable_robustness" brings the clamps back while a kernel is being debugged).
DAWN_TOGGLES_ENV = "RUSTYASG_DAWN_TOGGLES"

SUBGROUP_MATRIX = "chromium-experimental-subgroup-matrix"

# Feature names differ between the implementations; the backend asks for
# wgpu-native's names and these aliases map Dawn's onto them.
FEATURE_ALIASES = {"subgroups": "subgroup"}

_SUBGROUP_BUILTIN = re.compile(r"\bsubgroup[A-Z]\w*\s*\(|\bsubgroup_(size|invocation_id)\b")


class WebGpuChoiceError(RuntimeError):
    """``RUSTYASG_WEBGPU`` names an implementation that is unknown or not installed."""


def installed() -> dict[str, bool]:
    """Which implementations can be imported, without importing them.

    Example::

        >>> sorted(installed())
        ['dawn', 'native']
    """
    return {name: importlib.util.find_spec(mod) is not None for name, mod in IMPLEMENTATIONS.items()}


def choose_implementation(requested: str, available: Mapping[str, bool],
                          dawn_is_better: Callable[[], bool] = lambda: False) -> str:
    """The implementation to use for ``requested`` (``native``/``dawn``/``auto``).

    ``dawn_is_better`` is asked only when ``auto`` has both to choose from.

    Example::

        >>> choose_implementation("auto", {"native": True, "dawn": True}, lambda: True)
        'dawn'
        >>> try:
        ...     choose_implementation("dawn", {"native": True, "dawn": False})
        ... except WebGpuChoiceError as exc:
        ...     print(exc)
        RUSTYASG_WEBGPU=dawn but its package 'wgpudawn' is not installed; install it with `pip install rustyasg-wgpu[dawn]`, or set RUSTYASG_WEBGPU=native
    """
    requested = (requested or "auto").strip().lower()
    if requested not in ("auto", *IMPLEMENTATIONS):
        raise WebGpuChoiceError(f"{WEBGPU_ENV}={requested!r} is not one of auto, native, dawn")
    if requested != "auto":
        if not available.get(requested):
            hint = "pip install rustyasg-wgpu[dawn]" if requested == "dawn" else "pip install wgpu"
            other = "native" if requested == "dawn" else "dawn"
            raise WebGpuChoiceError(f"{WEBGPU_ENV}={requested} but its package {IMPLEMENTATIONS[requested]!r} is "
                                    f"not installed; install it with `{hint}`, or set {WEBGPU_ENV}={other}")
        return requested
    if available.get("dawn") and available.get("native"):
        return "dawn" if dawn_is_better() else "native"
    if available.get("native"):
        return "native"
    if available.get("dawn"):
        return "dawn"
    raise WebGpuChoiceError("no WebGPU implementation is installed: `pip install wgpu` (wgpu-native) or "
                            "`pip install rustyasg-wgpu[dawn]` (Dawn)")


def dawn_toggles(setting: str, known) -> list[str]:
    """The toggles Dawn is started with: :data:`DAWN_TOGGLES` and :data:`DAWN_SPEED_TOGGLES`,
    plus those ``setting`` (``RUSTYASG_DAWN_TOGGLES``) names, minus the speed toggles it names
    with a leading ``-``; each name is checked against ``known`` (Dawn's ``all_toggles()``).

    Example::

        >>> dawn_toggles("", {})
        ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', 'disable_robustness', 'disable_workgroup_init']
        >>> dawn_toggles("-disable_robustness, dump_shaders", {"disable_robustness": {}, "dump_shaders": {}})
        ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', 'disable_workgroup_init', 'dump_shaders']
        >>> try:
        ...     dawn_toggles("fast", {"disable_robustness": {}})
        ... except WebGpuChoiceError as exc:
        ...     print(exc)
        RUSTYASG_DAWN_TOGGLES names 'fast', which is not a Dawn toggle; wgpudawn.backends.dawn.extras.all_toggles() lists them
    """
    names = [t.strip() for t in (setting or "").split(",") if t.strip()]
    for name in names:
        if name.lstrip("-") not in known:
            raise WebGpuChoiceError(f"{DAWN_TOGGLES_ENV} names {name.lstrip('-')!r}, which is not a Dawn toggle; "
                                    "wgpudawn.backends.dawn.extras.all_toggles() lists them")
    left_out = {n[1:] for n in names if n.startswith("-")}
    if left_out - set(DAWN_SPEED_TOGGLES):
        raise WebGpuChoiceError(f"{DAWN_TOGGLES_ENV}: only the speed toggles {list(DAWN_SPEED_TOGGLES)} can be left "
                                f"out with '-', not {sorted(left_out - set(DAWN_SPEED_TOGGLES))}")
    added = [n for n in names if not n.startswith("-")]
    return list(dict.fromkeys([*DAWN_TOGGLES, *(t for t in DAWN_SPEED_TOGGLES if t not in left_out), *added]))


def _configure_dawn(module: ModuleType) -> None:
    """Dawn's toggles; they must be set before its first adapter request."""
    from_extras = importlib.import_module(module.__name__ + ".backends.dawn.extras")
    setting = os.environ.get(DAWN_TOGGLES_ENV, "")
    known = from_extras.all_toggles() if setting.strip() else {}
    from_extras.set_instance_extras(enable_toggles=dawn_toggles(setting, known))


@functools.lru_cache(maxsize=None)
def load(name: str) -> ModuleType:
    """The Python module of implementation ``name``, configured for the backend."""
    module = importlib.import_module(IMPLEMENTATIONS[name])
    if name == "dawn":
        _configure_dawn(module)
    return module


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C library's stderr (file descriptor 2) for a probe whose failures are expected
    (Dawn prints why it rejects software adapters such as lavapipe)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _dawn_offers_subgroup_matrix() -> bool:
    try:
        with _quiet_stderr():
            adapters = load("dawn").gpu.enumerate_adapters_sync()
    except Exception:  # no adapter, broken driver: Dawn offers nothing here
        return False
    return any(a.info.get("adapter_type") != "CPU" and SUBGROUP_MATRIX in a.features for a in adapters)


@functools.lru_cache(maxsize=None)
def implementation() -> str:
    """The implementation this process uses (``'native'`` or ``'dawn'``), chosen once.

    Example::

        >>> implementation() in ("native", "dawn")
        True
    """
    return choose_implementation(os.environ.get(WEBGPU_ENV, "auto"), installed(), _dawn_offers_subgroup_matrix)


def api() -> ModuleType:
    """The module with wgpu-py's API (``gpu``, ``BufferUsage``, ``MapMode``) of the chosen implementation.

    Example::

        >>> api().__name__ in ("wgpu", "wgpudawn")
        True
    """
    return load(implementation())


def canonical_features(names) -> frozenset:
    """Feature names with Dawn's spellings added under wgpu-native's (``subgroups`` -> ``subgroup``).

    Example::

        >>> sorted(canonical_features(["subgroups", "shader-f16"]))
        ['shader-f16', 'subgroup', 'subgroups']
    """
    names = set(names)
    return frozenset(names | {FEATURE_ALIASES[n] for n in names if n in FEATURE_ALIASES})


def adapt_wgsl(source: str, impl: str) -> str:
    """``source`` in the dialect of ``impl``'s shader compiler.

    Tint (Dawn) requires ``enable subgroups;`` before subgroup builtins are
    used; naga (wgpu-native) rejects that directive and enables them through
    the device feature alone.
    """
    if impl == "dawn" and "enable subgroups;" not in source and _SUBGROUP_BUILTIN.search(source):
        return "enable subgroups;\n" + source
    return source
