"""Ctrl-C during training: finish the running step, then stop cleanly.

A ``KeyboardInterrupt`` raised in the middle of a compiled step could leave some
variables updated and others not; a checkpoint written then would be a state no
step ever produced. So while :class:`InterruptGuard` is active, the first SIGINT
only sets a flag that the training loop reads between steps; a second one
aborts at once (the previous handler's behaviour, normally ``KeyboardInterrupt``).

Signal handlers can only be installed from the main thread; elsewhere the guard
is inert and the loop treats a ``KeyboardInterrupt`` it catches as the request.

Example:
    >>> with InterruptGuard() as guard:
    ...     guard.interrupted
    False
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Callable, Optional


class InterruptGuard:
    """Defers the first Ctrl-C to the next step boundary; see the module docstring.

    ``on_interrupt(message)`` is called once with a note for the user (the trainer
    prints it through the progress bar).
    """

    def __init__(self, on_interrupt: Optional[Callable[[str], None]] = None):
        self.interrupted = False
        self._on_interrupt = on_interrupt
        self._previous = None
        self._installed = False

    def _handle(self, signum, frame) -> None:
        if self.interrupted:
            # The user insists: give Ctrl-C its usual meaning from now on and abort.
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.interrupted = True
        note = "interrupted: finishing the current step, then saving a checkpoint (Ctrl-C again to abort)"
        if self._on_interrupt is not None:
            self._on_interrupt(note)
        else:
            print(note, file=sys.stderr, flush=True)

    def request(self) -> None:
        """Ask the loop to stop at the next step boundary (what the first Ctrl-C does)."""
        self.interrupted = True

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            if self._previous is not signal.SIG_IGN:  # a process started to ignore Ctrl-C keeps ignoring it
                signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)
            self._installed = False
