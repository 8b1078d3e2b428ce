"""Progress of long loops: a tqdm bar on a terminal, and elsewhere (nohup, SLURM, a pipe) a log
line at a steady interval with the count, the rate and the time left, so that no long step is
silent in a log file.

The interval is 30 s by default; the environment variable CRYOSCAPE_PROGRESS_SECONDS changes it.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from tqdm import tqdm

log = logging.getLogger("cryoscape")


def _interval() -> float:
    try:
        return float(os.environ.get("CRYOSCAPE_PROGRESS_SECONDS", "30"))
    except ValueError:
        return 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


class Progress:
    """Counts ``total`` items of ``unit`` for a loop named ``desc``; ``enabled`` False shows nothing.
    Use as a context manager; ``update(n, **note)`` after each step (``note``: values to show)."""

    def __init__(self, total: int, desc: str, unit: str = "img", enabled: bool = True):
        self.total, self.desc, self.unit = total, desc, unit
        terminal = sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not (enabled and terminal))
        self.lines = enabled and not terminal
        self.done, self.start = 0, time.perf_counter()
        self.next_line = self.start + _interval()

    def update(self, n: int, **note: str) -> None:
        self.done += n
        self.bar.update(n)
        if note:
            self.bar.set_postfix(note, refresh=False)
        now = time.perf_counter()
        if self.lines and now >= self.next_line and self.done < self.total:
            self.next_line = now + _interval()
            rate = self.done / max(now - self.start, 1e-9)
            extra = "".join(f", {k} {v}" for k, v in note.items())
            log.info(
                "%s: %d/%d %s (%.0f%%), %.1f %s/s, %s left%s",
                self.desc,
                self.done,
                self.total,
                self.unit,
                100 * self.done / max(self.total, 1),
                rate,
                self.unit,
                _duration((self.total - self.done) / max(rate, 1e-9)),
                extra,
            )

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
