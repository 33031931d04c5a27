"""Pick the fastest kernel variant once per (problem class, adapter); remember it.

Kernel speed depends on the GPU, the driver and the problem's shape in ways
no table predicts well, so candidates are timed on the real device the first
time a problem class is seen. The winner is stored in a JSON file per
adapter under the user cache directory (``$RUSTYASG_CACHE_DIR`` overrides),
so later processes skip the timing.

Example (``time_fn`` times one candidate on the device; here a table of made-up seconds):

    >>> import tempfile
    >>> from rustyasg.wgpu.device import get_context
    >>> tuner = Autotuner(get_context(), "matmul", path=Path(tempfile.mkdtemp()) / "choices.json")
    >>> tuner.choose("m4096_n4096_k4096", ["a", "b"], {"a": 2e-3, "b": 1e-3}.get)
    'b'
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

CACHE_ENV = "RUSTYASG_CACHE_DIR"
AUTOTUNE_ENV = "RUSTYASG_WGPU_AUTOTUNE"


def cache_dir() -> Path:
    """Directory for RustyASG's caches: ``$RUSTYASG_CACHE_DIR``, else the
    platform's user cache dir + ``/rustyasg``.

    Example::

        >>> os.environ[CACHE_ENV] = "/tmp/rc"; str(cache_dir())
        '/tmp/rc'
        >>> del os.environ[CACHE_ENV]
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "rustyasg"


def autotune_enabled(ctx: Any) -> bool:
    """Whether to time candidates: ``$RUSTYASG_WGPU_AUTOTUNE`` (0/1) if set,
    else only on hardware adapters (software ones give meaningless timings)."""
    env = os.environ.get(AUTOTUNE_ENV)
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return not getattr(ctx, "is_software", False)


def time_submit(ctx: Any, record: Callable[[Any], None], reps: int = 1) -> float:
    """Wall seconds of one submit of ``reps`` calls of ``record(cpass)`` in one pass, until done."""
    enc = ctx.device.create_command_encoder()
    cpass = enc.begin_compute_pass()
    for _ in range(reps):
        record(cpass)
    cpass.end()
    t0 = time.perf_counter()
    ctx.queue.submit([enc.finish()])
    ctx.synchronize()
    return time.perf_counter() - t0


def time_gpu(ctx: Any, record: Callable[[Any], None], min_seconds: float = 0.02, max_reps: int = 200) -> float:
    """Seconds per call of ``record(cpass)`` (which records dispatches into a pass).

    Warms up once (compilation, first-touch), then submits enough repeats in
    one command buffer to run ``min_seconds`` and divides: submit overhead and
    the host clock's resolution then vanish from the figure.
    """

    def run(reps: int) -> float:
        return time_submit(ctx, record, reps)

    run(1)
    one = max(run(1), 1e-6)
    reps = int(min(max_reps, max(1, min_seconds / one)))
    best = float("inf")
    for _ in range(2):  # best of two: the other process on the GPU, clocks ramping
        best = min(best, run(reps) / reps)
    return best


class Autotuner:
    """Choices of kernel variants per problem class, persisted per adapter.

    ``choose(cls, candidates, time_fn)`` returns the stored winner for
    ``cls`` or times every candidate with ``time_fn(name) -> seconds``
    (a candidate that raises loses) over ``rounds`` round-robin passes and
    stores the fastest.

    Example (the winner is stored: a second tuner on the same file times nothing):

        >>> import tempfile
        >>> from rustyasg.wgpu.device import get_context
        >>> path = Path(tempfile.mkdtemp()) / "choices.json"
        >>> Autotuner(get_context(), "matmul", path=path).choose("small", ["x", "y"], {"x": 2.0, "y": 1.0}.get)
        'y'
        >>> Autotuner(get_context(), "matmul", path=path).choose("small", ["x", "y"], {}.__getitem__)
        'y'
    """

    def __init__(self, ctx: Any, kind: str, path: Path | None = None, rounds: int = 2):
        self.ctx = ctx
        self.rounds = rounds
        self.kind = kind
        if path is None:
            digest = hashlib.sha256(ctx.cache_key.encode()).hexdigest()[:16]
            path = cache_dir() / "wgpu-autotune" / f"{kind}-{digest}.json"
        self.path = Path(path)
        self.entries: dict[str, dict] = self._load()
        self.timings_run = 0

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if data.get("adapter") != self.ctx.cache_key:
            return {}  # file from other hardware (hash collision or copied cache)
        return dict(data.get("entries", {}))

    def _save(self) -> None:
        data = {"adapter": self.ctx.cache_key, "kind": self.kind, "entries": self.entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename so a concurrent reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only cache only costs re-tuning next time

    def lookup(self, cls: str) -> str | None:
        """The stored winner for ``cls``, if any."""
        entry = self.entries.get(cls)
        return entry.get("best") if entry else None

    def choose(self, cls: str, candidates: Sequence[str], time_fn: Callable[[str], float]) -> str:
        """The fastest of ``candidates`` for problem class ``cls`` (timed once)."""
        best = self.lookup(cls)
        if best in candidates:
            return best
        # Round-robin, keeping each candidate's best: GPU clocks ramp and
        # throttle over a sweep, which would otherwise favour whichever
        # candidate happened to run at the highest clock.
        times = {name: float("inf") for name in candidates}
        failed: set[str] = set()
        for _ in range(self.rounds):
            for name in candidates:
                if name in failed:
                    continue
                try:
                    times[name] = min(times[name], float(time_fn(name)))
                except Exception:  # a variant the driver rejects simply loses
                    failed.add(name)
                self.timings_run += 1
        best = min(times, key=times.get)
        if times[best] == float("inf"):
            raise RuntimeError(f"every {self.kind} candidate failed for {cls}: {list(candidates)}")
        self.entries[cls] = {"best": best, "seconds": {k: (v if v != float("inf") else None) for k, v in times.items()}}
        self._save()
        return best
