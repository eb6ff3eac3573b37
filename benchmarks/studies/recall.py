"""Word recall against ground truth, over the part of a page that evaluation mode returns.

Without a license Aspose returns only the first part of each page, so recall against a
whole transcription would measure the cut, not the recognition. The ground truth is cut
to a window instead: its first N words, where N is the number of complete words the
reference setting (the untuned engine) returned for that image. Every setting is
scored on the same window, so a setting that loses words scores lower and one that
returns more words than the window gains nothing for them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")


def words(text: str) -> list[str]:
    """The words of ``text``, case-folded, without punctuation at their edges."""
    cleaned = (_EDGE_PUNCTUATION.sub("", token).casefold() for token in text.split())
    return [word for word in cleaned if word]


def complete_words(text: str) -> int:
    """Words in ``text`` that evaluation mode cannot have cut: all but the last."""
    return max(0, len(words(text)) - 1)


@dataclass(frozen=True)
class Recall:
    found: int
    window: int

    @property
    def share(self) -> float:
        return self.found / self.window if self.window else float("nan")

    def __add__(self, other: Recall) -> Recall:
        return Recall(self.found + other.found, self.window + other.window)


def recall(text: str, truth: str, window: int) -> Recall:
    """How many of the first ``window`` words of ``truth`` are among the words of ``text``
    (each word counted as often as it appears in both)."""
    expected = Counter(words(truth)[:window])
    found = Counter(words(text)) & expected
    return Recall(sum(found.values()), sum(expected.values()))


def pooled(recalls: Iterable[Recall]) -> Recall:
    return sum(recalls, Recall(0, 0))
