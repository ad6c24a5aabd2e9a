"""Stopping on Ctrl-C (SIGINT) and SIGTERM alike, and holding both off while a result is being saved."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StopSignals:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` like Ctrl-C does (schedulers send SIGTERM);
    :attr:`exit_status` is 128 + the last stop signal (130 for SIGINT, 143 for SIGTERM).

    A SIGINT ignored by the parent (a job started in the background with ``&`` or ``nohup``) stays ignored, as
    Python itself does: a terminal's Ctrl-C is not meant for it; SIGTERM still stops it."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal = signal.SIGINT
        self._previous: dict[int, object] = {}

    @property
    def exit_status(self) -> int:
        return 128 + int(self.signal)

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum)
        raise KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        if self.enabled:
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._raise)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()


@contextlib.contextmanager
def deferred_interrupts(reraise: bool = True) -> Iterator[list[tuple[int, FrameType | None]]]:
    """Hold SIGINT/SIGTERM until the block ends (a save is never cut in half), then raise :class:`KeyboardInterrupt`
    if one arrived (``reraise=False``: the yielded list says which arrived). Outside the main thread this does
    nothing."""
    received: list[tuple[int, FrameType | None]] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, lambda n, f: received.append((n, f)))
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
    if received and reraise:
        signum, frame = received[-1]
        handler = previous[signum]
        if handler is signal.SIG_IGN:
            return
        if callable(handler):
            handler(signum, frame)  # e.g. StopSignals records which signal it was, then raises
        raise KeyboardInterrupt
