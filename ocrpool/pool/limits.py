"""The pool's own limits on one input (``PoolConfig.max_pixels`` and ``max_pages``).

A worker checks them on what its engine is about to read, not on what a caller saw
earlier: ``ocrpool serve`` admits a ``?path=`` file, and ``ocrpool run`` a scanned one,
before the job waits in a queue, and a file replaced meanwhile must not take a
decompression bomb, or thousands of page jobs, past the limits. A document past them is
never split: its page jobs would be read without the check.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocrpool.errors import DocumentTooLong, InvalidInput
from ocrpool.formats import Format, check_pixels, too_many_pixels


@dataclass(frozen=True)
class InputLimits:
    """``PoolConfig.max_pixels`` and ``max_pages``, as a worker checks them."""

    max_pixels: int | None = None
    """Pixels in an image or a TIFF page, as its header declares them (``None``: any)."""
    max_pages: int | None = None
    """Pages in a document (``None``: any)."""

    def refuse(self, pages: int | None, largest: tuple[int, int] | None) -> bool:
        """Whether ``check`` refuses a document of ``pages`` pages whose largest page is
        ``largest`` (either ``None`` when unknown: not refused)."""
        return self._too_many_pages(pages) or too_many_pixels(largest, self.max_pixels)

    def check(
        self,
        fmt: Format | None,
        pages: int | None,
        largest: tuple[int, int] | None,
        input: str | None,
    ) -> None:
        """``ImageTooLarge`` or ``DocumentTooLong`` when ``refuse`` is true; ``InvalidInput``
        for an image of format ``fmt`` whose size (or a TIFF whose pages) a limit needs and
        its header does not give, as admission refuses it: a decoder may still read it."""
        if fmt is not None and fmt is not Format.PDF:
            kind = fmt.value.upper()
            if largest is None and self.max_pixels:
                raise InvalidInput(f"corrupt {kind}: cannot read the image size", input=input)
            if pages is None and self.max_pages:
                raise InvalidInput(f"corrupt {kind}: cannot count its pages", input=input)
        if largest is not None:
            check_pixels(largest, self.max_pixels, input=input, setting="the pool's max_pixels")
        if pages is not None and self._too_many_pages(pages):
            raise DocumentTooLong(
                f"{pages} pages is over the limit of {self.max_pages} (the pool's max_pages)",
                input=input,
                pages=pages,
                max_pages=self.max_pages or 0,
            )

    def _too_many_pages(self, pages: int | None) -> bool:
        if not self.max_pages or pages is None:
            return False
        return pages > self.max_pages


NO_LIMITS = InputLimits()
