"""MkDocs hooks: the pages that are generated from the code, so they cannot drift from it.

- ``reference/cli.md``: every command's ``--help``, walked from ``ocrpool.cli.build_parser``;
- ``reference/api.md``: one mkdocstrings entry per public name of ``ocrpool`` (``__all__``);
- the benchmark results and examples, served from where they live in the repository, so a
  page links ``benchmarks/results/...`` as the README does and ``--strict`` checks it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ocrpool
from ocrpool.cli import build_parser

ROOT = Path(__file__).parent.parent
SERVED = ("benchmarks/results", "examples")
"""Folders of the repository whose files the site serves at the same paths."""
HELP_COLUMNS = "100"


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Each (sub)command's words and parser, depth first, the top-level parser first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def help_text(parser: argparse.ArgumentParser) -> str:
    """``parser``'s ``--help`` as a terminal of ``HELP_COLUMNS`` columns prints it."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            parser.print_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return out.getvalue()


def cli_reference() -> str:
    sections = [
        "# CLI reference\n\n"
        "Generated from the parsers of `ocrpool.cli` when the site is built: this is what\n"
        "`--help` prints for each command. The [guide](../guide/cli.md) explains the\n"
        "conventions every command shares.\n"
    ]
    for words, parser in commands(build_parser()):
        title = " ".join(("ocrpool", *words))
        sections.append(f"## `{title}`\n\n```text\n{help_text(parser)}```\n")
    return "\n".join(sections)


def api_reference() -> str:
    sections = [
        "# API reference\n\n"
        "Every public name of `ocrpool` (its `__all__`), generated from the docstrings when\n"
        "the site is built. Import them from `ocrpool` itself: `from ocrpool import OcrPool`.\n"
    ]
    for name in sorted(ocrpool._MODULE_OF, key=lambda name: (ocrpool._MODULE_OF[name], name)):
        sections.append(f"## `{name}`\n\n::: {ocrpool._MODULE_OF[name]}.{name}\n")
    sections.append("## `__version__`\n\n::: ocrpool.__version__\n")
    return "\n".join(sections)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    files.append(File.generated(config, "reference/api.md", content=api_reference()))
    for folder in SERVED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                uri = path.relative_to(ROOT).as_posix()
                files.append(File(uri, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
