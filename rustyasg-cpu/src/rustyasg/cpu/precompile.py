"""Compile a new executable's numba kernels on two cores: this process and one worker process.

numba compiles a kernel on its first call, one kernel at a time (a global lock keeps threads
from compiling together), and a kernel costs 0.1-0.3 s of CPU, almost all of it numba's own
typing and lowering (LLVM's optimisation is ~15%, measured). A training step has 10-25 kernels,
so its first call is seconds of one busy core. Once an executable is bound, every kernel and
the argument types it will be called with are known: :func:`precompile` compiles them in
order, and as soon as one is not in numba's on-disk cache (every kernel is compiled with
``cache=True``) it starts a worker process on the same list from the other end. Each job is
claimed by whichever process reaches it first; the worker's machine code reaches this process
through the cache, where the first call finds it. With warm caches no worker starts.

Anything the worker cannot do is left to the first call, as before.

On Linux the worker is a fork of this process (:data:`FORK`): it has numba set up and every
kernel object already, so it compiles at once, and it is forked as soon as one kernel is
certainly not cached (its index file is missing). Elsewhere a warm worker process is started
with the backend (:func:`start_warm_worker`) and serves every executable through a pipe. The
worker's machine code is loaded here right after it finishes.

``RUSTYASG_CPU_COMPILE_WORKERS`` chooses: ``auto`` (the default: one worker where two CPUs are
usable), ``1`` (always) or ``0`` (never: each kernel compiles on its first call). Measured on the shared 2-core reference machine, cold
compile of the first step with empty caches, min of 3 runs (``benchmarks/cold_compile.py``,
``benchmarks/cpu/NOTES.md``): the demo's CNN 2.91 -> 1.64 s, the MLP 1.54 -> 0.88 s, LeNet-5
2.88 -> 1.55 s, GPT-mini 2.89 -> 1.63 s (with jax.jit's 0.51 / 0.93 / 1.48 / 2.17 s for W1-W4 in
the same run).

Example (a kernel of its own, so nothing else in the process has compiled it yet):
    >>> import functools, numba, numpy as np
    >>> @numba.njit
    ... def double_into(x, out):
    ...     out[:] = 2 * x
    >>> x, out = np.arange(3.0), np.empty(3)
    >>> jobs = pending([functools.partial(double_into, x, out)])
    >>> [(fn.py_func.__name__, len(sig)) for fn, sig in jobs]
    [('double_into', 2)]
    >>> double_into(x, out)  # compiled on its first call: nothing is pending any more
    >>> pending([functools.partial(double_into, x, out)])
    []
"""

from __future__ import annotations

import atexit
import functools
import importlib
import importlib.util
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Iterable, List, Sequence, Tuple

from .job_order import two_lane_order

#: Linux: the worker is a fork of this process, which has numba set up and every kernel loaded,
#: so it compiles at once (a fresh worker spends ~1.2 s of CPU starting). Elsewhere (no fork, or
#: macOS, where forking a process with threads is unsafe) a warm worker process serves the jobs.
FORK = sys.platform.startswith("linux") and hasattr(os, "fork")
#: A worker starts only with at least this many kernels left to compile: a fork costs a few
#: milliseconds, less than any kernel's compile (0.1-0.6 s), so two; a fresh process ~0.5 s.
MIN_KERNELS = int(os.environ.get("RUSTYASG_CPU_COMPILE_MIN", 2 if FORK else 4))
GENERATED = "rustyasg_generated."


def workers() -> int:
    """Worker processes to use (0 or 1): ``RUSTYASG_CPU_COMPILE_WORKERS``; ``auto`` (also when it is
    unset or empty): 1 where this process may run on at least two CPUs (a worker on a single CPU
    only competes)."""
    value = os.environ.get("RUSTYASG_CPU_COMPILE_WORKERS", "").strip().lower() or "auto"
    if value == "auto":
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return 1 if cpus >= 2 else 0
    return min(int(value), 1) if value.isdigit() else 0


def _calls(step, depth: int = 0) -> Iterable[Tuple[Callable, tuple]]:
    """``(function, args)`` of the kernel calls a bound step makes: partials, split jobs, and the
    partials a closure holds (a convolution's step runs its padding, im2col and GEMM in one)."""
    if depth > 4:
        return
    if isinstance(step, (list, tuple)):
        for item in step:
            yield from _calls(item, depth + 1)
        return
    if not isinstance(step, functools.partial):
        for cell in getattr(step, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not filled yet
                continue
            if isinstance(value, (functools.partial, list, tuple)) or getattr(value, "__closure__", None):
                yield from _calls(value, depth + 1)
        return
    owner = getattr(step.func, "__self__", None)
    if owner is not None and type(owner).__name__ == "Pool" and step.args:  # threads.splitter's jobs
        for job in step.args[0]:
            yield from _calls(job)
        return
    yield step.func, step.args


def pending(steps: Sequence) -> List[Tuple[object, tuple]]:
    """``(dispatcher, signature)`` of every numba kernel the steps call that is not compiled yet."""
    from numba import typeof
    from numba.core.dispatcher import Dispatcher

    out, seen = [], set()
    for step in steps:
        for fn, args in _calls(step):
            if not isinstance(fn, Dispatcher):
                continue
            try:
                sig = tuple(typeof(a) for a in args)
            except ValueError:  # an argument numba cannot type: the first call will say so
                continue
            key = (id(fn), sig)
            if key in seen or sig in fn.overloads:
                continue
            seen.add(key)
            out.append((fn, sig))
    return out


def _address(fn) -> tuple:
    """How a worker finds the dispatcher: (module name, its file for generated kernels, name)."""
    module = fn.py_func.__module__
    path = fn.py_func.__code__.co_filename if module.startswith(GENERATED) else None
    return module, path, fn.py_func.__qualname__


def _claim(folder: str, k: int) -> bool:
    """Whether this process is the first to take job ``k`` (an exclusively created file)."""
    try:
        os.close(os.open(os.path.join(folder, str(k)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except OSError:  # taken (FileExistsError), or the folder is gone: its caller finished
        return False


def _compile(fn, sig) -> bool:
    """Compile (or load from the cache); True when numba had to compile it."""
    misses = sum(fn.stats.cache_misses.values())
    try:
        fn.compile(sig)
    except Exception:  # noqa: BLE001 - the first call compiles again and raises the real error there
        return False
    return sum(fn.stats.cache_misses.values()) > misses


def precompile(steps: Sequence) -> int:
    """Compile the steps' kernels now, on two cores once one turns out not to be cached.

    This process takes jobs from the front of the list, the worker from the back, each job
    claimed by whichever gets to it first, so neither waits while work is left and a worker
    slow to start (a busy machine) only takes less. The list is ordered by
    :func:`.job_order.two_lane_order`: the largest jobs at both ends, and the kernels that share
    a helper on one side, so it is compiled once. Returns how many jobs the worker took.
    """
    if workers() < 1:
        return 0  # the first call compiles each kernel, as it always did
    jobs = two_lane_order(pending(steps))  # largest at both ends, each helper on one side
    if not jobs:
        return 0
    worker, folder, mine = None, tempfile.mkdtemp(prefix="rustyasg-jit-"), 0
    try:
        if len(jobs) > MIN_KERNELS:  # no need to wait for a miss: a warm worker costs nothing to
            # ask, and a fork is worth it as soon as one kernel is certainly not cached
            worker = _hand_to_warm_worker(folder, jobs) or (
                _fork_worker(folder, jobs) if FORK and _not_cached(jobs[-1][0]) else None)
        for k, (fn, sig) in enumerate(jobs):
            if not _claim(folder, k):
                break  # the worker got here from the other end: everything left is taken
            mine += 1
            missed = _compile(fn, sig)
            if missed and worker is None and len(jobs) - k - 1 >= MIN_KERNELS:
                worker = (_hand_to_warm_worker(folder, jobs) or (_fork_worker(folder, jobs) if FORK else None)
                          or _start_worker(folder, jobs))
        if worker is None:
            return 0
        if isinstance(worker, int):
            _reap(worker)
        elif worker is _warm:
            if mine < len(jobs):  # it took some: wait until it is done with them
                _wait_done(folder)
        elif mine == len(jobs):  # the worker never got one (still starting): no need to wait for it
            worker.kill()
            worker.wait()
            return 0
        else:
            try:
                worker.wait(timeout=600)
            except subprocess.TimeoutExpired:
                worker.kill()
        for fn, sig in jobs[mine:]:  # the worker's machine code, loaded from the cache now
            if sig not in fn.overloads:
                _compile(fn, sig)
        return len([f for f in os.listdir(folder) if f.isdigit()]) - mine
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _not_cached(fn) -> bool:
    """Whether ``fn`` certainly has nothing in numba's on-disk cache (its index file is missing)."""
    index = getattr(getattr(getattr(fn, "_cache", None), "_cache_file", None), "_index_path", None)
    return isinstance(index, str) and not os.path.exists(index)


def _fork_worker(folder: str, jobs) -> "int | None":
    """Fork a worker that compiles the jobs from the back into numba's cache; its pid, or None.

    The child runs only numba's compiler on objects it already has, claims jobs like any worker
    and leaves with ``os._exit`` (no exit handlers of this process run twice).
    """
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:
        code = 1
        try:
            for k in reversed(range(len(jobs))):
                if not _claim(folder, k):
                    break
                _compile(*jobs[k])
            code = 0
        finally:
            os._exit(code)
    return pid


def _reap(pid: int, timeout: float = 120.0) -> None:
    """Wait for a forked worker; after ``timeout`` seconds it is killed (what it held is compiled
    here instead)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.002)
    os.kill(pid, 9)
    os.waitpid(pid, 0)


#: The warm worker (:func:`start_warm_worker`), or None.
_warm = None


def start_warm_worker() -> None:
    """Start the worker process now, when the backend is created, if workers are enabled.

    It imports numba and the kernels and compiles one helper (numba's one-time set-up) while
    this process does the same and then traces the user's step, so by the time a step's
    kernels are known it compiles at once instead of spending its first ~1.2 s of CPU
    starting. It then serves every executable of this process (a training step, then its
    evaluation step): each sends it a claims folder on its stdin. It exits when this
    process closes that pipe (at exit, or when it dies).
    """
    global _warm
    if workers() < 1 or _warm is not None or FORK:
        return
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # this process's imports
    try:
        _warm = subprocess.Popen([sys.executable, "-m", "rustyasg.cpu.precompile", "--serve"], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return
    atexit.register(stop_warm_worker)


def stop_warm_worker() -> None:
    """Close the warm worker's pipe (it exits after the job it is on) and forget it."""
    global _warm
    worker, _warm = _warm, None
    if worker is not None:
        try:
            worker.stdin.close()
            worker.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            worker.kill()


def _hand_to_warm_worker(folder: str, jobs):
    """Give the jobs to the warm worker; the worker, or None when there is none (or it died)."""
    if _warm is None or _warm.poll() is not None:
        return None
    try:
        _write_jobs(folder, jobs)
        _warm.stdin.write((folder + "\n").encode())
        _warm.stdin.flush()
    except OSError:
        return None
    return _warm


def _wait_done(folder: str, timeout: float = 600.0) -> None:
    """Wait for the warm worker's ``done`` mark in ``folder`` (or its death, or ``timeout``)."""
    done, end = os.path.join(folder, "done"), time.monotonic() + timeout
    while not os.path.exists(done) and _warm is not None and _warm.poll() is None and time.monotonic() < end:
        time.sleep(0.002)


def _write_jobs(folder: str, jobs) -> None:
    with open(os.path.join(folder, "jobs.pickle"), "wb") as fh:  # not a job number: never claimed
        pickle.dump([(_address(fn), sig) for fn, sig in jobs], fh)


def _start_worker(folder: str, jobs) -> "subprocess.Popen | None":
    """The worker process, given the jobs in a file of the claims folder."""
    try:
        _write_jobs(folder, jobs)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # this process's imports
        return subprocess.Popen([sys.executable, "-m", "rustyasg.cpu.precompile", folder], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _load(module: str, path, name: str):
    if path is not None:
        mod = sys.modules.get(module)
        if mod is None:
            spec = importlib.util.spec_from_file_location(module, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[module] = mod  # numba looks functions' modules up by name
            spec.loader.exec_module(mod)
    else:
        mod = importlib.import_module(module)
    return getattr(mod, name)


def main(argv=None) -> int:
    """The worker: compile the jobs of the claims folder (``[((module, path, name), signature)]``
    in its ``jobs.pickle``) from the back of the list into the cache, each one it can claim."""
    folder = (argv or sys.argv[1:])[0]
    if folder == "--serve":
        return serve()
    try:
        with open(os.path.join(folder, "jobs.pickle"), "rb") as fh:
            jobs = pickle.load(fh)
    except OSError:  # the folder is gone: its process took every job and moved on
        return 0
    for k in reversed(range(len(jobs))):
        if not _claim(folder, k):
            break
        (module, path, name), sig = jobs[k]
        try:
            _compile(_load(module, path, name), sig)
        except Exception:  # noqa: BLE001 - left to the parent's first call
            pass
    return 0


def start_jit() -> float:
    """Register the kernels and start numba's runtime now, not inside the first compiled call.

    The first function numba compiles or loads in a process costs ~0.25 s of one-time set-up
    (its typing and lowering registries). Paying it when the backend is created keeps the first
    call of every compiled step down to its own compilation (or cache loading), and a forked
    compile worker inherits it. The set-up is bought with a one-line function: warming up with
    a real helper (``exp32`` did this job) cost 0.2 s more on a cold start, for steps that may
    not use it.
    """
    from rustyasg.core.plugins import load_kernels

    from .jit import helper_jit

    t0 = time.perf_counter()
    load_kernels("cpu")
    helper_jit(_numba_set_up)(0.0)
    return time.perf_counter() - t0


def _numba_set_up(x):
    """What :func:`start_jit` compiles (or loads from numba's cache)."""
    return x + 1.0


def serve() -> int:
    """The warm worker: set numba up, then compile the jobs of each claims folder read from
    stdin (one path a line), marking each folder ``done``; exit at the end of stdin."""
    start_jit()
    for line in sys.stdin:
        folder = line.strip()
        if not folder:
            continue
        main([folder])
        try:
            os.close(os.open(os.path.join(folder, "done"), os.O_CREAT | os.O_WRONLY))
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
