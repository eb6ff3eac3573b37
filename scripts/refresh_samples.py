"""Rewrite the marked console samples of the README and the docs with real runs.

``.venv/bin/python -m scripts.refresh_samples [FILE...]`` (default: every document). A
``<!-- sample -->`` console block has its ``$`` commands run one after the other by one
shell (so a variable or a server in the background lives on to the next command), in a fresh
folder that sees the repository's ``examples/`` and ``.venv/`` (so ``ocrpool run`` starts
over and leaves nothing behind), and gets their output (stdout and stderr, as a terminal
shows both) under each command. A
``<!-- sample: output of the example above -->`` block gets what the python block before it
prints when run as a script there. Samples are never
edited by hand: change the command, then run this.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scripts.doc_blocks import ROOT, SAMPLE, SAMPLE_OUTPUT, Block, blocks, commands, documents

LINKED = ("examples", ".venv")
"""What a sample's folder links from the repository."""
BETWEEN = "--- ocrpool sample: next command ---"
TIMEOUT_S = 600


def _run(argv: list[str], folder: Path) -> str:
    done = subprocess.run(
        argv,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return done.stdout


def _ended(output: str) -> str:
    """``output`` on lines of its own: what ends without a newline (``curl``, ``head -c``)
    must not run into the next prompt or the closing fence."""
    return output if output.endswith("\n") or not output else output + "\n"


@contextlib.contextmanager
def _fresh_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ocrpool-sample-") as name:
        folder = Path(name)
        for linked in LINKED:
            (folder / linked).symlink_to(ROOT / linked)
        yield folder


def refreshed(block: Block, before: Block | None) -> str:
    """The new text of a marked block."""
    with _fresh_folder() as folder:
        if block.marker == SAMPLE:
            lines = commands(block)
            script = "".join(f"echo '{BETWEEN}'\n{command}\n" for command in lines)
            outputs = _run(["bash", "-c", script], folder).split(f"{BETWEEN}\n")[1:]
            pairs = zip(lines, outputs, strict=True)
            return "".join(f"$ {command}\n{_ended(output)}" for command, output in pairs)
        if before is None or before.language != "python":
            raise SystemExit(f"{block.name}: no python block before this sample")
        (folder / "example.py").write_text(before.code)
        return _ended(_run([sys.executable, "example.py"], folder))


def refresh(path: Path) -> int:
    """Rewrite ``path``'s marked samples; how many there were."""
    text = path.read_text()
    found = blocks(path)
    marked = [
        (block, found[index - 1] if index else None)
        for index, block in enumerate(found)
        if block.marker in (SAMPLE, SAMPLE_OUTPUT)
    ]
    for block, before in reversed(marked):  # from the end, so earlier spans stay valid
        start, end = block.span
        text = text[:start] + refreshed(block, before) + text[end:]
        print(f"{block.name}: refreshed", file=sys.stderr)
    path.write_text(text)
    return len(marked)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.refresh_samples",
        description="Rewrite the marked console samples of the README and the docs with "
        "real runs (each command run by one shell, in a fresh folder).",
    )
    parser.add_argument(
        "files", nargs="*", type=Path, help="Markdown files (default: every document)"
    )
    args = parser.parse_args(argv)
    targets = [path.resolve() for path in args.files] or documents()
    total = sum(refresh(path) for path in targets)
    print(f"{total} samples refreshed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
