"""The fenced code blocks of the README and the docs pages, with the marker before each.

A marker is an HTML comment alone on the line right above a fence; it says what the tests
and ``scripts/refresh_samples.py`` do with the block:

- ``<!-- example: fake -->`` above a ``python`` block: the tests run it with the ``fake``
  engine in place of the one it names (unmarked, it runs as written, on the real engine);
- ``<!-- sample -->`` above a ``console`` block: its ``$`` commands are run from the
  repository root and the block is rewritten with their real output;
- ``<!-- sample: output of the example above -->`` above a ``text`` block: the python block
  before it is run and the block is rewritten with what it printed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
FAKE_EXAMPLE = "example: fake"
SAMPLE = "sample"
SAMPLE_OUTPUT = "sample: output of the example above"

_FENCE = re.compile(
    r"^(?:<!-- (?P<marker>.+?) -->\n)?```(?P<language>\w*)\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
_PROMPT = re.compile(r"^[\w-]*\$\s+(?P<command>.+)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    """Line of the opening fence, from 1."""
    language: str
    marker: str | None
    code: str
    span: tuple[int, int]
    """Where ``code`` is in the file's text, to rewrite it."""

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    """The README and every docs page."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start("language")) + 1
        language, marker, code = match.group("language", "marker", "code")
        found.append(Block(path, line, language, marker, code, match.span("code")))
    return found


def all_blocks(language: str) -> list[Block]:
    return [block for path in documents() for block in blocks(path) if block.language == language]


def commands(block: Block) -> list[str]:
    """The command lines of a console block: each line after a prompt (``$``, ``head$``),
    with its continuation lines."""
    lines = (_PROMPT.match(line) for line in block.code.replace("\\\n", " ").splitlines())
    return [found.group("command") for found in lines if found]


def program_argv(command: str) -> tuple[str, list[str]] | None:
    """The program a command line runs (``ocrpool``, ``make``, or the module of
    ``python -m``) and the arguments its parser sees, without a trailing comment, a
    redirection or what follows a pipe; ``None`` for any other program."""
    words = shlex.split(command, comments=True)
    for index, word in enumerate(words):
        if word in ("|", "&", "&&", ";") or word.startswith((">", "<", "2>")):
            words = words[:index]
            break
    if not words:
        return None
    program = Path(words[0]).name
    if program in ("ocrpool", "make"):
        return program, words[1:]
    if program.startswith("python") and words[1:2] == ["-m"] and len(words) > 2:
        return words[2], words[3:]
    return None
