"""Executor events → lines for people: live (one rewritten status line) on a terminal, plain otherwise.

`say` prints a line that stays (step started/finished, a cluster done or failed); `working`
shows what is going on right now (applying, waiting for health): on a terminal it rewrites one
status line, in a log (not a TTY) it is printed once per distinct message so that CI logs stay
short. Every text passes through the run's redactor first, so a Secret value can never reach
the output even inside a server's error message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TextIO


class Reporter:
    def __init__(self, stream: TextIO, *, live: bool = False, redact: Callable[[str], str] = lambda s: s,
                 quiet: bool = False) -> None:
        self.stream = stream
        self.live = live
        self.redact = redact
        self.quiet = quiet
        self._lock = threading.Lock()
        self._status = ""
        self._seen: set[str] = set()
        self.lines: list[str] = []  # what was said (tests and the summary read it)

    def _clear(self) -> None:
        if self.live and self._status:
            self.stream.write("\r\x1b[K")
            self._status = ""

    def learn_secret(self, value: str) -> None:
        """A Secret value read during the run: mask it in everything said from now on."""
        from velapy.execute.redact import Redactor

        if not isinstance(self.redact, Redactor):
            self.redact = Redactor(before=self.redact)
        self.redact.add(value)

    def say(self, text: str) -> None:
        text = self.redact(text)
        with self._lock:
            self.lines.append(text)
            if self.quiet:
                return
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()

    def working(self, text: str) -> None:
        text = self.redact(text)
        with self._lock:
            if self.quiet:
                return
            if self.live:
                self._clear()
                self._status = text
                self.stream.write(text[:200])
                self.stream.flush()
            elif text not in self._seen:
                self._seen.add(text)
                self.stream.write(text + "\n")
                self.stream.flush()

    def done(self) -> None:
        with self._lock:
            self._clear()
            self.stream.flush()


__all__ = ["Reporter"]
