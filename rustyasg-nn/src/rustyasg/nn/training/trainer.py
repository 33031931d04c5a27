"""``Trainer`` / ``fit``: the training loop around one compiled step.

The loop is host-side bookkeeping around two compiled functions (see
:mod:`.steps`): the train step (forward, backward, optimizer update and buffer
updates in one graph, compiled once) and the eval step. Between steps it only
moves batches in, reads the loss back every ``log_every`` steps, sets the
learning rate through the scheduler (a variable: no recompilation), shows
progress, logs, evaluates, checkpoints and stops early.

Everything the trainer talks to besides the model and optimizer is duck-typed, so
``rustyasg.nn`` needs no other part: training data is any re-iterable of ``(x, y)``
numpy batches (``set_epoch(e)`` is called when present, which makes a seeded
shuffle resumable), metrics have ``reset/update(outputs, y)/compute``, the logger
has ``log(values, step=)``, early stopping has ``step(value) -> bool``, and
checkpoints go through a ``CheckpointManager``.

Ctrl-C finishes the running step, saves a checkpoint and returns normally;
``fit(..., resume_from=manager_or_path)`` continues exactly where it stopped.

Example:
    >>> import numpy as np, rustyasg.nn as nn
    >>> gen = np.random.default_rng(0)
    >>> x = gen.standard_normal((64, 4)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    >>> model = nn.Linear(4, 2)
    >>> trainer = Trainer(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.5),
    ...                   backend="reference", progress=False)
    >>> result = trainer.fit(batches, epochs=3)
    >>> result.epochs_completed, trainer.train_step.stats["compiles"]
    (3, 1)
"""

from __future__ import annotations

import collections.abc
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, TextIO

import numpy as np

from . import checkpointing
from .callbacks import CallbackList
from .distributed import strategy_for
from .interrupts import InterruptGuard
from .progress import ProgressSetting, SilentProgress, make_progress
from .steps import batch_size, build_eval_step, build_train_step, flatten_batch, split_batch


@dataclass
class TrainState:
    """Where training stands: the epoch being run, batches done in it, and steps done in total.

    Saved in every checkpoint; a resumed run starts from it.
    """

    epoch: int = 0
    batch: int = 0
    global_step: int = 0

    def as_dict(self) -> Dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch, "global_step": self.global_step}


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns.

    ``history`` has one dict of logs per completed epoch; ``checkpoint`` is the path of the
    last checkpoint written (or ``None``); times are wall-clock seconds.
    """

    history: List[Dict[str, Any]] = field(default_factory=list)
    epochs_completed: int = 0
    global_step: int = 0
    interrupted: bool = False
    stopped_early: bool = False
    checkpoint: Optional[str] = None
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    compile_time_s: float = 0.0

    @property
    def final(self) -> Dict[str, Any]:
        """The logs of the last completed epoch (empty before the first)."""
        return self.history[-1] if self.history else {}


class _LossWindow:
    """Step losses kept as backend handles and read back together (one sync per window).

    A handle is the loss, or ``[loss, state_check]`` when the step checks its new state
    (``build_train_step(check_finite=True)``); ``first_nonfinite_step`` is then the first step
    of the window whose weights (or other updated state) stopped being finite.
    """

    def __init__(self):
        self.pending: List[Any] = []
        self.window_sum = self.window_n = 0.0
        self.epoch_sum = self.epoch_n = 0.0
        self.first_nonfinite_step: Optional[int] = None

    def add(self, handle, n: int, step: int) -> None:
        self.pending.append((handle, n, step))

    def flush(self, to_host: Callable[[Any], np.ndarray]) -> None:
        for handle, n, step in self.pending:
            values = np.asarray(to_host(handle), dtype=np.float64).reshape(-1)
            if values.size > 1 and not math.isfinite(values[1]) and self.first_nonfinite_step is None:
                self.first_nonfinite_step = step
            self.window_sum += float(values[0]) * n
            self.window_n += n
        self.pending.clear()

    def take_window(self) -> float:
        """Mean loss since the previous call; its samples join the epoch mean."""
        mean = self.window_sum / self.window_n if self.window_n else math.nan
        self.epoch_sum += self.window_sum
        self.epoch_n += self.window_n
        self.window_sum = self.window_n = 0.0
        return mean

    @property
    def epoch_mean(self) -> float:
        return self.epoch_sum / self.epoch_n if self.epoch_n else math.nan


def _plain(value):
    """A Python number from a metric result, or the value itself when it is not a scalar."""
    arr = np.asarray(value)
    if arr.size == 1 and arr.dtype.kind in "biuf":
        return arr.reshape(()).item()
    return value


class Trainer:
    """Train ``model`` on ``loss_fn(model(x), y)`` with ``optimizer``; see the module docstring.

    Args:
        model: a :class:`rustyasg.nn.Module`.
        loss_fn: ``loss_fn(outputs, y) -> scalar tensor`` (a loss function or loss module).
        optimizer: a :mod:`rustyasg.nn.optim` optimizer (``updates(loss, ...)``, ``state_dict``).
        scheduler: optional LR scheduler (``step()``, ``state_dict``), stepped every training
            step (``scheduler_interval="step"``) or after every epoch (``"epoch"``).
        metrics: ``{name: metric}`` computed by :meth:`evaluate` on the model outputs.
        logger: ``log(values, step=global_step)``: called every ``log_every`` steps with the
            running training ``loss`` and ``lr``, and after every epoch with the epoch's logs
            (``epoch``, ``train_loss``, ``val_loss``, ``val_<metric>``, ``samples_per_s`` ...).
        early_stopping: ``step(value) -> bool`` fed ``logs[monitor]`` after every epoch.
        monitor: the epoch-log key early stopping and "best" checkpoints watch
            (``"val_loss"``, ``"val_acc"`` for a metric named ``acc``, ``"train_loss"``).
        checkpoints: a ``CheckpointManager``; saved after every epoch and on Ctrl-C.
        backend: backend name or object for both compiled functions.
        forward: ``forward(model, *inputs)`` instead of ``model(*inputs)``.
        clip_grad_norm, clip_grad_value: gradient clipping inside the step.
        progress: ``"auto"`` (tqdm if installed, else lines), ``"tqdm"``, ``"lines"`` or False.
        log_every: steps between loss read-backs, progress updates and logger rows.
        callbacks: objects with any of the hooks of :class:`~.callbacks.Callback`.
        eval_label: prefix of the evaluation's epoch logs (``"val"``: ``val_loss``, ``val_acc``; a run
            that evaluates on its test set says ``"test"`` and logs ``test_loss``, ``test_acc``).
        halt_on_nonfinite: raise ``FloatingPointError`` when the training loss or the model's
            state (weights, optimizer moments, buffers) becomes NaN/inf; checked inside the step
            and read back with the loss every ``log_every`` steps, before anything is saved.
        checkpoint_metadata: JSON-able user metadata stored in every checkpoint.
        stream: where progress goes (default ``sys.stderr``).
        distributed: ``True`` trains data-parallel over the ranks of an MPI job (the
            ``rustyasg-dist`` part: gradients averaged inside the step, rank 0's weights at the
            start, progress, logs and checkpoints on rank 0, losses and metrics averaged over
            ranks); or a strategy such as ``rustyasg.distributed.DataParallel(zero=1)``.
        precision: ``"bf16"`` or ``"f16"`` (or a ``rustyasg.core.Precision``): the training step in
            mixed precision, float32 master weights; f16 with dynamic loss scaling inside the step
            (a step with a non-finite gradient is skipped; ``trainer.train_step.loss_scale``).
        memory_budget: bytes; activations are recomputed in the backward pass so the step's
            planned peak fits (``trainer.train_step.report(*batch)`` says what was chosen).
    """

    def __init__(self, model, loss_fn: Callable, optimizer, *, scheduler=None, scheduler_interval: str = "step",
                 metrics: Optional[Mapping[str, Any]] = None, logger=None, early_stopping=None,
                 monitor: str = "val_loss", checkpoints=None, backend=None, forward: Optional[Callable] = None,
                 clip_grad_norm=None, clip_grad_value=None, progress: ProgressSetting = "auto", log_every: int = 50,
                 callbacks: Iterable[Any] = (), halt_on_nonfinite: bool = True, eval_label: str = "val",
                 checkpoint_metadata: Optional[Mapping[str, Any]] = None, stream: Optional[TextIO] = None,
                 distributed=False, precision=None, memory_budget: Optional[int] = None):
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")
        if int(log_every) < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        self.metrics = dict(metrics or {})
        self.logger, self.early_stopping, self.monitor = logger, early_stopping, monitor
        self.checkpoints = checkpoints
        self.checkpoint_metadata = dict(checkpoint_metadata or {})
        self.backend, self.forward = backend, forward
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.progress, self.log_every, self.stream = progress, int(log_every), stream
        self.callbacks = CallbackList(callbacks)
        self.halt_on_nonfinite = halt_on_nonfinite
        self.eval_label = eval_label
        self.precision, self.memory_budget = precision, memory_budget
        self.distributed = strategy_for(distributed)
        if self.distributed is not None:
            self.optimizer = self.distributed.wrap_optimizer(optimizer)  # its updates sync the gradients
            if not self.distributed.is_main:
                self.progress, self.logger = False, None
        self.state = TrainState()
        self.train_step = None  # rustyasg.core.Function, compiled from the first batch
        self.eval_step = None
        self._guard: Optional[InterruptGuard] = None
        self._stop_requested = False
        self._bar = SilentProgress()
        self._saved_step: Optional[int] = None

    # -- compiled steps -------------------------------------------------------------------------------------
    def _ensure_train_step(self, batch) -> None:
        if self.train_step is None:
            self.train_step = build_train_step(self.model, self.loss_fn, self.optimizer, batch, self.backend,
                                               self.forward, self.clip_grad_norm, self.clip_grad_value,
                                               check_finite=self.halt_on_nonfinite, precision=self.precision,
                                               memory_budget=self.memory_budget)

    def compile(self, batch, background: bool = False):
        """Build and compile the training step for batches shaped like ``batch`` now, rather than on
        :meth:`fit`'s first step (only shapes and dtypes matter: zeros will do).

        With ``background=True`` the compile runs in a thread while the program goes on (loading
        its data, say); :meth:`fit`'s first step waits only for what is left, and reports that
        wait as its compile time (the whole compile is ``train_step.stats["background_compile_s"]``).
        Returns the executable, or a :class:`concurrent.futures.Future` of it.

        >>> import numpy as np, rustyasg.nn as nn
        >>> model = nn.Linear(3, 2)
        >>> trainer = Trainer(model, nn.cross_entropy, nn.optim.SGD(model.parameters(), lr=0.1), progress=False)
        >>> pending = trainer.compile((np.zeros((4, 3), np.float32), np.zeros(4, np.int64)), background=True)
        >>> pending.result() is not None
        True
        """
        self._ensure_train_step(batch)
        return self.train_step.compile(*flatten_batch(batch), background=background)

    def _ensure_eval_step(self, batch) -> None:
        if self.eval_step is None:
            self.eval_step = build_eval_step(self.model, self.loss_fn, batch, self.backend, self.forward)

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group (what the next step uses)."""
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def stats(self) -> Dict[str, Any]:
        """Compile counts and times of the two compiled functions."""
        out = {}
        for name, fn in (("train", self.train_step), ("eval", self.eval_step)):
            if fn is not None:
                out[f"{name}_compiles"] = fn.stats["compiles"]
                out[f"{name}_last_compile_s"] = fn.stats["last_compile_s"]
        return out

    def request_stop(self) -> None:
        """Stop after the current epoch (callbacks call this)."""
        self._stop_requested = True

    def request_interrupt(self) -> None:
        """Stop at the next step boundary and checkpoint, as Ctrl-C does."""
        if self._guard is not None:
            self._guard.request()

    def view(self, batch=None, **kwargs):
        """Open the training step's forward, gradient and compiled graphs in the browser.

        ``batch`` (one ``(x, y)`` batch) compiles the step if ``fit`` has not yet; ``kwargs`` go to
        ``rustyasg.core.view`` (``profile=``, ``stats=``, ``highlight=``, ``block=`` ...). Needs the
        ``rustyasg-viz`` part.
        """
        import rustyasg.core as rg

        view = rg.view  # provided by the rustyasg-viz part (a clear error names its pip command)
        return view(self, *(() if batch is None else (batch,)), **kwargs)

    # -- evaluation ---------------------------------------------------------------------------------------------
    def evaluate(self, data: Iterable, metrics: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Mean loss and ``metrics`` over ``data`` with the model in eval mode.

        Returns ``{"loss": ..., name: metric.compute(), ...}``.
        """
        metrics = self.metrics if metrics is None else dict(metrics)
        for m in metrics.values():
            m.reset()
        total, count = 0.0, 0
        for batch in data:
            if self._guard is not None and self._guard.interrupted:
                break
            self._ensure_eval_step(batch)
            outputs, loss = self.eval_step(*flatten_batch(batch))
            n = batch_size(batch)
            total += float(loss) * n
            count += n
            _, y = split_batch(batch)
            for m in metrics.values():
                m.update(outputs, y)
        if self._guard is not None and self._guard.interrupted:
            return {}  # cut short by Ctrl-C: partial numbers would mislead
        if count == 0:
            raise ValueError("evaluate: the data yielded no batches")
        out = {"loss": total / count}
        out.update({name: _plain(m.compute()) for name, m in metrics.items()})
        return out if self.distributed is None else self.distributed.mean_logs(out, count)

    # -- the loop ---------------------------------------------------------------------------------------------
    def fit(self, train_data: Iterable, epochs: int, val_data: Optional[Iterable] = None,
            resume_from=None) -> FitResult:
        """Train for ``epochs`` epochs in total (a resumed run counts the epochs already done).

        ``val_data`` is evaluated after every epoch (logs ``val_loss`` and ``val_<metric>``).
        ``resume_from`` is a ``CheckpointManager`` (its latest checkpoint) or a checkpoint path.
        """
        if isinstance(train_data, collections.abc.Iterator) and epochs > 1:
            raise TypeError("train_data is a one-shot iterator; pass a re-iterable (a list, a DataLoader) "
                            "so every epoch can iterate it again")
        result = FitResult()
        if resume_from is not None:
            checkpointing.resume(self, resume_from)
        if self.distributed is not None:
            self.distributed.on_fit_start(self)
        self._stop_requested = False
        self._saved_step = None
        self.callbacks.on_fit_start(self)
        with InterruptGuard(on_interrupt=lambda note: self._bar.write(note)) as guard:
            self._guard = guard
            try:
                while self.state.epoch < epochs and not guard.interrupted:
                    logs = self._run_epoch(train_data, epochs, val_data, result)
                    if logs is None:  # interrupted inside the epoch
                        break
                    result.history.append(logs)
                    if self._stop_requested:
                        break
                result.interrupted = guard.interrupted
                if guard.interrupted:
                    # Still guarded: a first Ctrl-C here does not tear the save; a second one aborts.
                    self._finish_interrupted(result)
            finally:
                self._guard = None
        result.epochs_completed = self.state.epoch
        result.global_step = self.state.global_step
        self.callbacks.on_fit_end(self, result)
        return result

    def _finish_interrupted(self, result: FitResult) -> None:
        if self._saved_step != self.state.global_step:
            result.checkpoint = self._save_checkpoint({}) or result.checkpoint
        where = f"stopped in epoch {self.state.epoch + 1} after step {self.state.global_step}"
        if self.checkpoints is None:
            self._bar.write(where + " (no checkpoint manager given: nothing saved)")
        else:
            self._bar.write(f"{where}; checkpoint: {result.checkpoint}")

    def _epoch_batches(self, train_data: Iterable, epoch: int):
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(epoch)  # the same shuffle as an uninterrupted run would draw
        source = iter(train_data)
        batches = source
        if self.state.batch:
            # Resuming mid-epoch: skip the batches already trained on (loaded, not computed).
            batches = itertools.islice(source, self.state.batch, None)
        return source, batches

    def _run_epoch(self, train_data, epochs: int, val_data, result: FitResult) -> Optional[Dict[str, Any]]:
        """Train one epoch, then evaluate, log, checkpoint; ``None`` when Ctrl-C cut the epoch short."""
        epoch = self.state.epoch
        self.callbacks.on_epoch_start(self, epoch)
        total = len(train_data) if hasattr(train_data, "__len__") else None
        self._bar = make_progress(self.progress, total, f"epoch {epoch + 1}/{epochs}", self.stream)
        if self.state.batch:
            self._bar.update(self.state.batch)
        t_start = time.perf_counter()
        window, samples, compile_s = self._train_steps(train_data, epoch)
        self._bar.close()
        train_s = time.perf_counter() - t_start
        result.train_time_s += train_s
        result.compile_time_s += compile_s
        if self._guard.interrupted:
            return None
        logs: Dict[str, Any] = {"epoch": epoch + 1, "train_loss": window.epoch_mean, "lr": self.lr,
                                "train_time_s": train_s,
                                "samples_per_s": samples / max(train_s - compile_s, 1e-9)}
        if self.distributed is not None:
            logs["train_loss"] = self.distributed.mean(logs["train_loss"], samples)
        if val_data is not None:
            t0 = time.perf_counter()
            logs.update({f"{self.eval_label}_{k}": v for k, v in self.evaluate(val_data).items()})
            result.eval_time_s += time.perf_counter() - t0
        self._end_epoch(logs, result)
        summary = ", ".join(f"{k}={v:.4g}" for k, v in logs.items() if isinstance(v, float) and k != "train_time_s")
        self._bar.write(f"epoch {epoch + 1}/{epochs}: {summary}")
        self.callbacks.on_epoch_end(self, epoch, logs)
        return logs

    def _train_steps(self, train_data, epoch: int):
        """Run the epoch's (remaining) steps; returns ``(loss window, samples, compile seconds)``."""
        window = _LossWindow()
        samples = 0
        compile_s = 0.0
        # Throughput window: samples and compile-free seconds since the last report.
        t_window, samples_window, compile_window = time.perf_counter(), 0, 0.0
        source, batches = self._epoch_batches(train_data, epoch)
        try:
            for batch in batches:
                if self._interrupted():
                    break
                self._ensure_train_step(batch)
                compiles = self.train_step.stats["compiles"]
                handle = self.train_step(*flatten_batch(batch), fetch=False)
                if self.train_step.stats["compiles"] != compiles:
                    compile_window += self.train_step.stats["last_compile_s"]
                n = batch_size(batch)
                samples += n
                samples_window += n
                self.state.batch += 1
                self.state.global_step += 1
                window.add(handle, n, self.state.global_step)
                if self.scheduler is not None and self.scheduler_interval == "step":
                    self.scheduler.step()
                self._bar.update(1)
                self.callbacks.on_step_end(self, self.state.global_step)
                if len(window.pending) >= self.log_every:
                    now = time.perf_counter()
                    self._report(window, samples_window, now - t_window - compile_window)
                    compile_s += compile_window
                    t_window, samples_window, compile_window = now, 0, 0.0
            if self.distributed is not None:
                self._interrupted()  # Ctrl-C during the epoch's last step: every rank learns of it
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # stops a prefetching loader's thread when the loop ends early
        if window.pending:
            self._report(window, samples_window, time.perf_counter() - t_window - compile_window)
        return window, samples, compile_s + compile_window

    def _interrupted(self) -> bool:
        """Ctrl-C seen here or, when distributed, on any rank: every rank stops after the same step."""
        if self.distributed is None:
            return self._guard.interrupted
        if self.distributed.any(self._guard.interrupted):
            self._guard.request()
            return True
        return False

    def _end_epoch(self, logs: Dict[str, Any], result: FitResult) -> None:
        """Advance the position, then schedule, log, early-stop and checkpoint with the epoch's logs."""
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        self.state.epoch += 1
        self.state.batch = 0
        # The per-window rows already carry the learning rate; epoch rows add the epoch's numbers.
        self._log({k: v for k, v in logs.items() if isinstance(v, (int, float)) and k != "lr"})
        if self.early_stopping is not None and not self._guard.interrupted:
            if self.monitor not in logs:
                raise KeyError(f"early stopping monitors {self.monitor!r}, which is not among the epoch logs "
                               f"{sorted(logs)}")
            if self.early_stopping.step(logs[self.monitor]):
                result.stopped_early = True
                self._stop_requested = True
        path = self._save_checkpoint(logs)
        if path is not None:
            result.checkpoint = path

    def _report(self, window: _LossWindow, samples: int, seconds: float) -> None:
        """Read the pending losses back, then update the bar and the logger."""
        window.flush(self.train_step.backend.to_host)
        loss = window.take_window()
        if self.distributed is not None:
            loss = self.distributed.mean(loss, samples)
        if self.halt_on_nonfinite and not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} by step {self.state.global_step} "
                                     f"(epoch {self.state.epoch + 1}); lower the learning rate or clip gradients")
        if self.halt_on_nonfinite and window.first_nonfinite_step is not None:
            raise FloatingPointError(
                f"the model's weights or optimizer state became NaN/inf at step {window.first_nonfinite_step} "
                f"(epoch {self.state.epoch + 1}) while the loss stayed finite ({loss:.6g}): look for NaN/inf "
                f"in the batch or a gradient that is not finite (sqrt/log/division at 0); lower the learning "
                f"rate or clip gradients")
        self._bar.update(0, {"loss": loss, "lr": self.lr, "samples/s": samples / max(seconds, 1e-9)})
        self._log({"loss": loss, "lr": self.lr})

    def _log(self, values: Dict[str, Any]) -> None:
        if self.logger is not None and values:
            self.logger.log(values, step=self.state.global_step)

    def _save_checkpoint(self, logs: Mapping[str, Any]) -> Optional[str]:
        if self.checkpoints is None:
            return None
        if self.distributed is not None:  # rank 0 writes; every rank gets the path once it is on disk
            path = self.distributed.save(lambda: checkpointing.save(self, self.checkpoints, logs))
        else:
            path = checkpointing.save(self, self.checkpoints, logs)
        self._saved_step = self.state.global_step
        return path


def fit(model, loss_fn: Callable, optimizer, train_data: Iterable, epochs: int, val_data: Optional[Iterable] = None,
        resume_from=None, **trainer_options) -> FitResult:
    """One-call training: ``Trainer(model, loss_fn, optimizer, **trainer_options).fit(...)``.

    >>> import numpy as np, rustyasg.nn as nn
    >>> x = np.ones((8, 2), np.float32); y = np.zeros((8, 1), np.float32)
    >>> model = nn.Linear(2, 1)
    >>> r = fit(model, nn.mse_loss, nn.optim.SGD(model.parameters(), lr=0.1), [(x, y)], epochs=2,
    ...         backend="reference", progress=False)
    >>> r.global_step
    2
    """
    trainer = Trainer(model, loss_fn, optimizer, **trainer_options)
    return trainer.fit(train_data, epochs, val_data=val_data, resume_from=resume_from)
