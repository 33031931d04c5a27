"""Every installed RustyASG part says its version, and it is the one its package metadata records."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util

import rustyasg.core as rg

#: distribution -> the module it ships (the distribution name minus "rustyasg-", except dist).
MODULES = {"rustyasg-dist": "rustyasg.distributed"}


def installed_parts():
    names = sorted({d.metadata["Name"] for d in md.distributions() if (d.metadata["Name"] or "").startswith("rustyasg-")})
    for dist in names:
        module = MODULES.get(dist, "rustyasg." + dist[len("rustyasg-"):].replace("-", "_"))
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:  # a regular package (a namespace-only tree has no __init__)
            yield dist, module


def test_every_part_reports_its_metadata_version():
    parts = dict(installed_parts())
    assert {"rustyasg-core", "rustyasg-cpu", "rustyasg-nn", "rustyasg-data"} <= set(parts)
    for dist, module in parts.items():
        assert importlib.import_module(module).__version__ == md.version(dist), dist
    assert rg.__version__ == md.version("rustyasg-core") == md.version("rustyasg")
