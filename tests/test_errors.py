"""Errors as types: a type checker sees each constructor's fields, every public error
survives pickling with its fields, and every one has its exit code and HTTP status."""

from __future__ import annotations

import inspect
import pickle
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ocrpool
import ocrpool.batch.errors
import ocrpool.engines.aspose.models
import ocrpool.engines.aspose.runtime
import ocrpool.scaleout.errors
import ocrpool.service.errors
from ocrpool.batch.errors import OutputFailed, OutputNameRefused, OutputRefused
from ocrpool.engines.aspose.runtime import RuntimeSetupError
from ocrpool.error_codes import ExitCode, exit_code_of, http_status_of, listed_base
from ocrpool.errors import (
    EngineStartError,
    ExportFailed,
    ImageTooLarge,
    InvalidInput,
    MemoryLimitExceeded,
    OcrPoolError,
)
from ocrpool.scaleout.errors import RayNotInstalled
from ocrpool.service.errors import QueueFull

ROOT = Path(__file__).parent.parent

ERROR_MODULES: tuple[ModuleType, ...] = (
    ocrpool.service.errors,
    ocrpool.batch.errors,
    ocrpool.scaleout.errors,
    ocrpool.engines.aspose.models,
    ocrpool.engines.aspose.runtime,
)


def public_errors() -> list[type[OcrPoolError]]:
    """The error classes ``ocrpool`` exports, and those of the service, batch, scale-out
    and runtime error modules."""
    exported = [getattr(ocrpool, name) for name in ocrpool.__all__]
    defined = [
        value
        for module in ERROR_MODULES
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__ and name[0] != "_"
    ]
    found = {kind for kind in exported + defined if _is_error(kind)}
    return sorted(found, key=lambda kind: kind.__name__)


def _is_error(value: object) -> bool:
    return inspect.isclass(value) and issubclass(value, OcrPoolError)


OWN_CONSTRUCTORS: dict[type[OcrPoolError], Any] = {
    RayNotInstalled: lambda: RayNotInstalled("No module named 'ray'"),
}


def _example(kind: type[OcrPoolError]) -> OcrPoolError:
    """An instance with every field set to a value that is not its default."""
    if kind in OWN_CONSTRUCTORS:
        return OWN_CONSTRUCTORS[kind]()  # type: ignore[no-any-return]
    fields = {name: f"{name}-value" for name in kind._field_names}
    return kind(f"{kind.__name__} happened", **fields)


@pytest.mark.parametrize("kind", public_errors(), ids=lambda kind: kind.__name__)
def test_every_public_error_pickles_with_its_fields(kind: type[OcrPoolError]) -> None:
    error = _example(kind)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is kind
    assert copy.message == error.message and copy.args == error.args
    assert copy.to_dict() == error.to_dict()
    assert set(copy.to_dict()) == {"type", "message", *kind._field_names}


def test_a_class_with_its_own_constructor_keeps_its_message_across_pickling() -> None:
    error = RayNotInstalled("No module named 'ray'")
    copy = pickle.loads(pickle.dumps(error))
    assert (
        copy.message
        == error.message
        == ("the Ray backend needs Ray (No module named 'ray'): pip install 'ocrpool[ray]'")
    )
    assert copy.install == "pip install 'ocrpool[ray]'"


def test_a_misspelt_field_is_a_type_error_at_run_time() -> None:
    with pytest.raises(TypeError, match="InvalidInput has no field path"):
        ocrpool.InvalidInput("x", path="y")  # type: ignore[call-arg]


WRONG = """
from ocrpool.errors import ImageTooLarge, InvalidInput
from ocrpool.scaleout.errors import RayNotInstalled

InvalidInput("x", path="y")
ImageTooLarge("x", width="wide")
InvalidInput(message="x", input="y", width=3)
RayNotInstalled("x", install="y")
"""

RIGHT = """
from ocrpool.batch.errors import OutputFailed
from ocrpool.errors import ImageTooLarge, InvalidInput, PoolClosed
from ocrpool.scaleout.errors import RayNotInstalled

errors = [
    InvalidInput("x", input="y"),
    ImageTooLarge("x", input="y", width=1, height=2, max_pixels=3),
    PoolClosed("closed"),
    RayNotInstalled("no ray"),
    OutputFailed.of("out.jsonl", OSError(28, "No space left on device")),
]
reveal_type(errors[0].message)
"""


@pytest.fixture(scope="module")
def mypy_says(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """What the project's mypy (``make typecheck``'s settings and cache) reports on the two
    snippets, by file, in one run. Lines are matched by file name: an unchanged snippet's
    messages may come from mypy's cache under the folder of an earlier run."""
    folder = tmp_path_factory.mktemp("mypy")
    for name, code in (("wrong", WRONG), ("right", RIGHT)):
        (folder / f"{name}.py").write_text(code)
    command = [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"]
    command += ["--no-error-summary", str(folder / "wrong.py"), str(folder / "right.py")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert not done.stderr, done.stderr
    said: dict[str, list[str]] = {"wrong.py": [], "right.py": []}
    for line in done.stdout.splitlines():
        path, _, rest = line.partition(":")
        if Path(path).name in said and ("error:" in rest or "Revealed" in rest):
            said[Path(path).name].append(rest)
    return said


def test_mypy_sees_each_error_constructor_s_fields(mypy_says: dict[str, list[str]]) -> None:
    assert mypy_says["wrong.py"] == [
        '5: error: Unexpected keyword argument "path" for "InvalidInput"  [call-arg]',
        '6: error: Argument "width" to "ImageTooLarge" has incompatible type "str"; '
        'expected "int"  [arg-type]',
        '7: error: Unexpected keyword argument "width" for "InvalidInput"  [call-arg]',
        '8: error: Unexpected keyword argument "install" for "RayNotInstalled"  [call-arg]',
    ]


def test_mypy_accepts_correct_error_constructors(mypy_says: dict[str, list[str]]) -> None:
    assert mypy_says["right.py"] == ['13: note: Revealed type is "str"']


@pytest.mark.parametrize("kind", public_errors(), ids=lambda kind: kind.__name__)
def test_every_public_error_has_an_entry_in_the_table(kind: type[OcrPoolError]) -> None:
    """Listed itself or through a base of its own family, never by the catch-all."""
    assert listed_base(kind) is not OcrPoolError or kind is OcrPoolError
    assert exit_code_of(kind) in ExitCode
    assert 400 <= http_status_of(kind) <= 599


@pytest.mark.parametrize(
    ("error", "exit_code", "status"),
    [
        (EngineStartError("no engine"), ExitCode.ENGINE_UNAVAILABLE, 503),
        (RuntimeSetupError("no libssl", remedy="ocrpool doctor --fix"), 4, 503),
        (InvalidInput("bad"), ExitCode.SOME_FAILED, 422),
        (ImageTooLarge("bomb"), ExitCode.SOME_FAILED, 422),
        (ExportFailed("no pdf", format="pdf"), ExitCode.SOME_FAILED, 422),
        (MemoryLimitExceeded("big"), ExitCode.SOME_FAILED, 502),
        (OutputRefused("inside"), ExitCode.USAGE, 500),
        (OutputFailed("full"), ExitCode.OUTPUT_FAILED, 500),
        (OutputNameRefused("too long"), ExitCode.SOME_FAILED, 500),
        (RayNotInstalled("no ray"), ExitCode.USAGE, 500),
        (QueueFull("full"), ExitCode.SOME_FAILED, 429),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_subclasses_answer_as_their_nearest_listed_base(
    error: OcrPoolError, exit_code: int, status: int
) -> None:
    """A column a class leaves empty (no HTTP status for a command-line problem, no exit
    code for a request's refusal) falls through to the next base that gives one."""
    assert (exit_code_of(error), http_status_of(error)) == (exit_code, status)


def _table_rows(document: str, heading: str) -> list[tuple[int, str]]:
    """(first cell as a number, the rest) of the first table after ``heading``."""
    text = (ROOT / document).read_text().split(heading, 1)[1]
    table = text.split("| --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines():
        first, rest = line.strip("|").split("|", 1)
        rows.append((int(first), rest))
    return rows


def test_the_documented_exit_codes_are_the_enum() -> None:
    for document in ("README.md", "docs/guide/batch.md"):
        rows = _table_rows(document, "## Exit codes\n")
        assert [code for code, _ in rows] == sorted(ExitCode), document


def test_the_documented_status_table_agrees_with_the_error_table() -> None:
    errors = {kind.__name__: kind for kind in public_errors()}
    seen = set()
    for status, text in _table_rows("docs/guide/service.md", "**Errors.** Every answer"):
        for name in re.findall(r"`([A-Z][A-Za-z]+)`", text):
            if name in errors:
                assert http_status_of(errors[name]) == status, name
                seen.add(name)
    assert len(seen) >= 15
