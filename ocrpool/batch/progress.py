"""Progress display: a tqdm bar on a terminal, plain periodic lines otherwise.

The runner calls ``update`` after every change to the tally and ``close`` at the end; the
stream and the clock are injected, so tests read the non-terminal lines directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TextIO

from tqdm import tqdm

from ocrpool.batch.summary import Tally

Clock = Callable[[], float]

DEFAULT_INTERVAL_S = 10.0


class Progress(Protocol):
    def update(self, tally: Tally) -> None: ...

    def close(self, tally: Tally) -> None: ...


def make_progress(
    stream: TextIO, clock: Clock, *, quiet: bool = False, interval_s: float = DEFAULT_INTERVAL_S
) -> Progress:
    if quiet:
        return Silent()
    if stream.isatty():
        return Bar(stream)
    return LogLines(stream, clock, interval_s)


class Silent:
    def update(self, tally: Tally) -> None:
        pass

    def close(self, tally: Tally) -> None:
        pass


class LogLines:
    """One line every ``interval_s`` seconds of the injected clock, and one at the end:

    ``ocrpool: 120/530+ done, 12.0 images/s, ETA -, 2 failed, 1 recycles``

    ``+`` marks a total that still grows (the scan goes on); the ETA needs the final total.
    Once the pool splits a document into page jobs, its pages are counted too, and the
    rate and ETA count each of them as one, as they count every other input:

    ``ocrpool: inputs 3/10 done, pages 41/70 of 2 split documents, 2.4 pages/s, ...``
    """

    def __init__(self, stream: TextIO, clock: Clock, interval_s: float) -> None:
        self.stream: TextIO | None = stream
        self.clock = clock
        self.interval_s = interval_s
        self.started = clock()
        self.next_line = self.started + interval_s

    def update(self, tally: Tally) -> None:
        now = self.clock()
        if now >= self.next_line:
            self._line(tally, now)
            self.next_line = now + self.interval_s

    def close(self, tally: Tally) -> None:
        self._line(tally, self.clock())

    def _line(self, tally: Tally, now: float) -> None:
        """Write one line; a stream that fails (``2>&1 | head -1`` closed the pipe) is
        given up, and the run goes on without progress."""
        if self.stream is None:
            return
        try:
            self._write(tally, now, self.stream)
        except OSError:
            self.stream = None

    def _write(self, tally: Tally, now: float, stream: TextIO) -> None:
        elapsed = now - self.started
        rate = tally.work_done / elapsed if elapsed > 0 else 0.0
        left = tally.work_queued - tally.work_done
        eta = "-" if tally.scanning or rate == 0 else tqdm.format_interval(left / rate)
        unit = "pages" if tally.split.documents else "images"
        stream.write(
            f"ocrpool: {_counts(tally)}, {rate:.1f} {unit}/s, "
            f"ETA {eta}, {tally.failures} failed, {tally.recycles} recycles\n"
        )
        stream.flush()


def _counts(tally: Tally) -> str:
    growing = "+" if tally.scanning else ""
    inputs = f"{tally.recorded}/{tally.queued}{growing} done"
    split = tally.split
    if not split.documents:
        return inputs
    return (
        f"inputs {inputs}, pages {split.pages_done}/{split.pages} of {split.documents} "
        f"split document{'s' if split.documents > 1 else ''}"
    )


class Bar:
    """tqdm draws rate and ETA; the total follows the scan. Drawn from the first update.
    Counts images as ``LogLines`` does: a split document's pages one by one."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: tqdm | None = None

    def update(self, tally: Tally) -> None:
        if self.bar is None:
            self.bar = tqdm(total=0, unit="img", file=self.stream, dynamic_ncols=True)
        self.bar.total = tally.work_queued
        split = tally.split
        self.bar.set_postfix_str(
            f"{tally.failures} failed, {tally.recycles} recycles"
            + (f", inputs {tally.recorded}/{tally.queued}" if split.documents else "")
            + (f", pages {split.pages_done}/{split.pages}" if split.documents else "")
            + (", scanning" if tally.scanning else ""),
            refresh=False,
        )
        self.bar.update(tally.work_done - self.bar.n)

    def close(self, tally: Tally) -> None:
        self.update(tally)
        assert self.bar is not None
        self.bar.close()
