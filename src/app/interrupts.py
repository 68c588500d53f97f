"""SIGTERM and SIGINT end a command by unwinding it, so ``with`` blocks clean up on the way out.

Python's default for SIGTERM kills the process on the spot: every ``TemporaryDirectory`` it had
open (staged, secret-masked copies of job files) stays in ``$TMPDIR``. ``timeout``, CI cancellation
and systemd all stop processes with SIGTERM, so the command turns it into an exception instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Sequence


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so library code that cleans up on Ctrl-C also
    cleans up on SIGTERM, and no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


@contextlib.contextmanager
def unwind_on_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Within the block, each of ``signals`` raises :class:`Interrupted` in the main thread.

    A second signal during the clean-up ends the process at once, as the user insists (the usual
    "press Ctrl-C again to force"). Forked workers
    inherit the handler; in them it restores the default action and re-sends the signal, so they
    end as they would have. Outside the main thread (an embedding caller) nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def interrupt(signum: int, _frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
