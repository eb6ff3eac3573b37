"""Engines by name: ``aspose`` (default), ``tesseract``, ``fake``, or ``"package.module:Class"``.

Resolving a name imports only the engine's Python module; the aspose module imports
``aspose.ocr`` inside ``start()``, so naming it here never loads the .NET runtime (nor
the tesseract module tesserocr).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ocrpool.engines.base import Engine, Source

BUILTIN_ENGINES = {
    "aspose": "ocrpool.engines.aspose.engine:AsposeEngine",
    "fake": "ocrpool.engines.fake:FakeEngine",
    "tesseract": "ocrpool.engines.tesseract.engine:TesseractEngine",
}


def resolve_engine(spec: str) -> type[Engine]:
    """Return the engine class named by ``spec`` (a built-in name or ``module:Class``)."""
    target = BUILTIN_ENGINES.get(spec, spec)
    module_name, sep, class_name = target.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(
            f"unknown engine {spec!r}: use one of {sorted(BUILTIN_ENGINES)} "
            "or an import path 'package.module:Class'"
        )
    if module_name.startswith("."):
        raise ValueError(f"engine {spec!r}: {module_name} is relative; give its full name")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if not _names_the_module(exc.name, module_name):
            raise  # the module is there, and what it imports is not: its own error
        raise ValueError(f"engine {spec!r}: cannot import {module_name}: {exc}") from None
    try:
        engine_class: type[Engine] = getattr(module, class_name)
    except AttributeError:
        raise ValueError(f"engine {spec!r}: {module_name} has no {class_name}") from None
    return engine_class


def _names_the_module(missing: str | None, module_name: str) -> bool:
    """Whether the module found missing is ``module_name`` or a package above it (a typo
    in the engine's name), not something that module imports."""
    return missing is not None and (module_name + ".").startswith(missing + ".")


def check_option_names(spec: str, options: dict[str, Any]) -> None:
    """``ValueError`` naming the options the engine's constructor does not take: known
    before any worker starts, as its values are not (an engine checks those itself)."""
    engine_class = resolve_engine(spec)
    try:
        parameters = inspect.signature(engine_class).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the worker's start will say
        return
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    known = sorted(parameter.name for parameter in parameters if parameter.kind in named)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"the {spec!r} engine has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(known)}"
        )


def create_engine(spec: str, options: dict[str, Any] | None = None) -> Engine:
    """Construct (but do not start) the engine named by ``spec`` with ``options``."""
    return resolve_engine(spec)(**(options or {}))


__all__ = [
    "BUILTIN_ENGINES",
    "Engine",
    "Source",
    "check_option_names",
    "create_engine",
    "resolve_engine",
]
