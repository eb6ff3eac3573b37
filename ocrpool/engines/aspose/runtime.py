"""The native runtime under Aspose.OCR: what a process needs before ``import aspose.ocr``.

Aspose.OCR for Python embeds a .NET Core 3.1 runtime that aborts the whole process
unless OpenSSL 1.1 (``libssl.so.1.1``) can be loaded and ICU is found. Current
distributions ship neither OpenSSL 1.1 nor an ICU version .NET Core 3.1 knows, so
``prepare_process()`` runs in a worker before that import: it tells .NET which ICU to
use (``CLR_ICU_VERSION_OVERRIDE``) and preloads a private OpenSSL 1.1, which
``provision.provision_libssl`` (``ocrpool doctor --fix``) fetches. ``tune_runtime`` sets
how the runtime runs (``RuntimeTuning``), also before that import: .NET reads its
settings from the environment once, when it starts.

Everything that reads the system takes its inputs as arguments (paths, environment),
so the selection logic is tested on fake trees.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import os
import sysconfig
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path

import platformdirs

from ocrpool.errors import OcrPoolError

LIBSSL_DIR_VARIABLE = "OCRPOOL_LIBSSL_DIR"
"""Points at a directory holding ``libssl.so.1.1`` and ``libcrypto.so.1.1``."""
ICU_VARIABLE = "CLR_ICU_VERSION_OVERRIDE"
INVARIANT_VARIABLE = "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"
LIBCRYPTO = "libcrypto.so.1.1"
LIBSSL = "libssl.so.1.1"
LIBSSL_PACKAGE = "libssl1.1"
TIERED_COMPILATION_VARIABLE = "COMPlus_TieredCompilation"
CONCURRENT_GC_VARIABLE = "COMPlus_gcConcurrent"


class RuntimeSetupError(OcrPoolError):
    """A native prerequisite of the Aspose runtime is missing and was not provided.

    ``remedy`` says, in one or two sentences, what the user must do.
    """

    remedy: str = ""


class LibsslOrigin(str, enum.Enum):
    ENVIRONMENT = "OCRPOOL_LIBSSL_DIR"
    CACHE = "ocrpool cache"
    SYSTEM = "system loader"


@dataclasses.dataclass(frozen=True)
class LibsslLocation:
    """Where OpenSSL 1.1 comes from; ``directory`` is ``None`` for the system loader."""

    origin: LibsslOrigin
    directory: Path | None

    def describe(self) -> str:
        where = self.directory if self.directory is not None else "the system library path"
        return f"{where} ({self.origin.value})"


@dataclasses.dataclass(frozen=True)
class Globalization:
    """The environment variable that tells .NET how to find ICU, and why that value."""

    variable: str
    value: str
    reason: str

    def describe(self) -> str:
        return f"{self.variable}={self.value} ({self.reason})"


@dataclasses.dataclass(frozen=True)
class RuntimeSetup:
    """What ``prepare_process`` did."""

    libssl: LibsslLocation
    globalization: Globalization


@dataclasses.dataclass(frozen=True)
class RuntimeTuning:
    """How the .NET runtime under Aspose runs; each field is one engine option.

    The defaults are what ``python -m benchmarks tune-engine`` measured as cheaper for a
    single-threaded engine serving many jobs; ``True`` leaves .NET's own behaviour.
    """

    tiered_compilation: bool = False
    """.NET's tiered compilation: quick code first, optimised once methods are hot."""
    concurrent_gc: bool = False
    """.NET's background (concurrent) garbage collection, on a thread of its own."""

    def environment(self) -> dict[str, str]:
        """The variables these settings need. .NET Core 3.1, the runtime Aspose embeds,
        reads ``COMPlus_`` variables only (not the ``DOTNET_`` spelling of .NET 5+)."""
        switches = {
            TIERED_COMPILATION_VARIABLE: self.tiered_compilation,
            CONCURRENT_GC_VARIABLE: self.concurrent_gc,
        }
        return {variable: "0" for variable, on in switches.items() if not on}


def tune_runtime(
    tuning: RuntimeTuning, environ: MutableMapping[str, str] = os.environ
) -> dict[str, str]:
    """Set the variables ``tuning`` needs that ``environ`` lacks, and return them.

    Call it before ``import aspose.ocr``: the runtime reads them when it starts, and a
    runtime already started ignores them. A variable already set (by the user) wins.
    """
    applied = {
        variable: value
        for variable, value in tuning.environment().items()
        if variable not in environ
    }
    environ.update(applied)
    return applied


def default_cache_dir() -> Path:
    """The per-user copy of OpenSSL 1.1 that ``provision_libssl`` makes."""
    return Path(platformdirs.user_cache_dir("ocrpool")) / LIBSSL_PACKAGE


def has_libssl(directory: Path) -> bool:
    return all((directory / name).is_file() for name in (LIBCRYPTO, LIBSSL))


def system_has_libssl() -> bool:
    """Whether the dynamic loader finds OpenSSL 1.1 by name (installed system-wide)."""
    try:
        ctypes.CDLL(LIBSSL)
    except OSError:
        return False
    return True


def find_libssl(
    environ: Mapping[str, str] = os.environ,
    cache_dir: Path | None = None,
    system_loadable: Callable[[], bool] = system_has_libssl,
) -> LibsslLocation | None:
    """OpenSSL 1.1 from ``OCRPOOL_LIBSSL_DIR``, else the per-user cache, else the system.

    An ``OCRPOOL_LIBSSL_DIR`` without the two libraries is an error, not a fallback:
    the user asked for that copy.
    """
    configured = environ.get(LIBSSL_DIR_VARIABLE)
    if configured:
        directory = Path(configured).expanduser().resolve()
        if not has_libssl(directory):
            raise RuntimeSetupError(
                f"{LIBSSL_DIR_VARIABLE}={configured} does not hold {LIBCRYPTO} and {LIBSSL}",
                remedy=f"point {LIBSSL_DIR_VARIABLE} at the directory holding both files, "
                "or unset it and run `ocrpool doctor --fix`",
            )
        return LibsslLocation(LibsslOrigin.ENVIRONMENT, directory)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    if has_libssl(cache):
        return LibsslLocation(LibsslOrigin.CACHE, cache)
    if system_loadable():
        return LibsslLocation(LibsslOrigin.SYSTEM, None)
    return None


def default_library_dirs() -> tuple[Path, ...]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [Path("/usr/lib") / multiarch, Path("/lib") / multiarch] if multiarch else []
    return (*dirs, Path("/usr/lib64"), Path("/usr/lib"), Path("/usr/local/lib"))


def icu_major(library_dirs: Iterable[Path] | None = None) -> int | None:
    """The newest ICU major version installed (from ``libicuuc.so.NN``), or ``None``."""
    majors = [
        int(suffix)
        for directory in (library_dirs if library_dirs is not None else default_library_dirs())
        for path in directory.glob("libicuuc.so.*")
        if (suffix := path.name.removeprefix("libicuuc.so.")).isdigit()
    ]
    return max(majors, default=None)


def choose_globalization(environ: Mapping[str, str], icu: int | None) -> Globalization:
    """Respect the user's own ICU setting, else pin the installed ICU, else go invariant."""
    for variable in (ICU_VARIABLE, INVARIANT_VARIABLE):
        if variable in environ:
            return Globalization(variable, environ[variable], "set by the user")
    if icu is not None:
        return Globalization(ICU_VARIABLE, str(icu), f"libicuuc.so.{icu} installed")
    return Globalization(
        INVARIANT_VARIABLE, "1", "no ICU found: culture-invariant mode (install libicu for ICU)"
    )


def missing_libssl_error() -> RuntimeSetupError:
    return RuntimeSetupError(
        f"OpenSSL 1.1 ({LIBSSL}) is not available; the Aspose runtime aborts without it",
        remedy=f"run `ocrpool doctor --fix`, or set {LIBSSL_DIR_VARIABLE} to a directory "
        f"holding {LIBCRYPTO} and {LIBSSL}",
    )


def prepare_process(
    environ: MutableMapping[str, str] = os.environ,
    cache_dir: Path | None = None,
    library_dirs: Iterable[Path] | None = None,
) -> RuntimeSetup:
    """Make this process able to import ``aspose.ocr``; call it before that import.

    Idempotent: the variable is only set when absent, and loading a library twice
    only bumps the loader's reference count. Libraries are loaded by path with
    ``RTLD_GLOBAL`` (libcrypto first, which libssl needs), so .NET's own
    ``dlopen("libssl.so.1.1")`` finds them already loaded.
    """
    globalization = choose_globalization(environ, icu_major(library_dirs))
    environ.setdefault(globalization.variable, globalization.value)
    location = find_libssl(environ, cache_dir)
    if location is None:
        raise missing_libssl_error()
    if location.directory is not None:
        for name in (LIBCRYPTO, LIBSSL):
            ctypes.CDLL(str(location.directory / name), mode=ctypes.RTLD_GLOBAL)
    return RuntimeSetup(location, globalization)
