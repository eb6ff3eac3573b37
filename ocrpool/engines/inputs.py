"""What every built-in engine checks before its library sees an input, and the warm-up
image each recognises in ``start()`` so that a worker reporting ready is a warm one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ocrpool.errors import InvalidInput
from ocrpool.formats import HEADER_BYTES, Format, sniff

WARMUP_IMAGE = Path(__file__).with_name("warmup.png")
"""Three printed lines that an engine's ``start()`` recognises."""
WARMUP_FIRST_LINE = "Hello from ocrpool"
"""The warm-up image's first line: Aspose's evaluation mode still returns it."""

PNG_TAIL_BYTES = 1024
"""How far from the end a PNG's end chunk is looked for (tolerates trailing junk)."""
_PNG_END = b"IEND\xaeB`\x82"
_SUPPORTED = ", ".join(fmt.value for fmt in Format)


def check_file(path: str) -> Format:
    """The file's format, or ``InvalidInput`` naming the file and what is wrong with it."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{path}: not a regular file", input=path)
        with open(path, "rb") as handle:
            head = handle.read(HEADER_BYTES)
            handle.seek(max(0, info.st_size - PNG_TAIL_BYTES))
            tail = handle.read()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file", input=path) from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})", input=path) from None
    return require_format(head, tail, info.st_size, path)


def require_format(head: bytes, tail: bytes, size: int, label: str) -> Format:
    """The format of an input whose first and last bytes are ``head`` and ``tail``.

    A PNG cut short is refused here: engines read it as a blank page, without error.
    """
    if size == 0:
        raise InvalidInput(f"{label}: empty (0 bytes)", input=label)
    fmt = sniff(head)
    if fmt is None:
        raise InvalidInput(f"{label}: not an image or PDF (supported: {_SUPPORTED})", input=label)
    if fmt is Format.PNG and _PNG_END not in tail:
        raise InvalidInput(f"{label}: truncated PNG (no end chunk)", input=label)
    return fmt


def bytes_format(source: bytes) -> Format:
    """``require_format`` of an input given as bytes; its label is ``bytes_label``."""
    head, tail = source[:HEADER_BYTES], source[-PNG_TAIL_BYTES:]
    return require_format(head, tail, len(source), bytes_label(source))


def bytes_label(source: bytes) -> str:
    """How messages and results name an input given as bytes."""
    return f"<{len(source)} bytes>"
