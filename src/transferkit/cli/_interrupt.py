"""Ctrl-C that always stops the command, even when Python swallows the first KeyboardInterrupt.

Python raises KeyboardInterrupt wherever the main thread is when it handles
SIGINT. If that is a finalizer (a ``__del__`` or weakref callback, which
TensorFlow runs by the thousand while it traces a model's first step), the
exception is dropped (Python would print it as "Exception ignored in ..." with
a traceback; while a command runs, those KeyboardInterrupts are dropped
silently) and training goes on: one Ctrl-C in four during fine-tuning was lost
that way. So while a command runs, a SIGINT also starts a watchdog: until the command has caught
the KeyboardInterrupt, the signal is sent again every :data:`RESEND_S`
seconds, and after :data:`GIVE_UP_S` (the main thread stuck in one long
TensorFlow call) the process ends with exit code 130.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

RESEND_S = 1.0
"""Seconds before a SIGINT that has not stopped the command is sent again."""
GIVE_UP_S = 8.0
"""Seconds after the first SIGINT after which the process ends at once (see ``on_give_up``)."""


class Interrupts:
    """The SIGINTs received while a command runs; see the module docstring.

    Attributes:
        received: How many SIGINTs arrived (resent ones included).
        stopped: Set once the command has caught its KeyboardInterrupt (or ended).
    """

    def __init__(self, on_give_up: Callable[[], None] | None = None) -> None:
        self.received = 0
        self.stopped = threading.Event()
        self._on_give_up = on_give_up

    def handle(self, signum, frame) -> None:
        """The SIGINT handler: raise KeyboardInterrupt, and watch that it stops the command."""
        if self.stopped.is_set():  # a resent signal that came after the command stopped
            return
        self.received += 1
        if self.received == 1:
            threading.Thread(target=self._watch, name="transferkit-interrupt",
                             daemon=True).start()
        raise KeyboardInterrupt

    def _watch(self) -> None:
        waited = 0.0
        while not self.stopped.wait(RESEND_S):
            waited += RESEND_S
            if waited >= GIVE_UP_S:
                if self._on_give_up is not None:
                    self._on_give_up()
                return
            os.kill(os.getpid(), signal.SIGINT)  # the last one was swallowed


@contextlib.contextmanager
def catching_interrupts(on_give_up: Callable[[], None] | None = None) -> Iterator[Interrupts]:
    """Install :class:`Interrupts` as the SIGINT handler while the block runs (main thread only).

    Args:
        on_give_up: Called from the watchdog thread when the command has not
            stopped :data:`GIVE_UP_S` seconds after the first SIGINT (the
            command line ends the process there); None: keep waiting.
    """
    interrupts = Interrupts(on_give_up)
    if threading.current_thread() is not threading.main_thread():
        yield interrupts
        return
    previous = signal.signal(signal.SIGINT, interrupts.handle)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_interrupts(previous_hook)
    try:
        yield interrupts
    finally:
        interrupts.stopped.set()
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
        sys.unraisablehook = previous_hook


def _quiet_interrupts(previous: Callable) -> Callable:
    """An unraisable hook that drops KeyboardInterrupts (the watchdog resends them)."""

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous(unraisable)

    return hook
