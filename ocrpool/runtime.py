"""The native runtime under Aspose.OCR, and how to host it safely.

Aspose.OCR for Python embeds a .NET Core 3.1 runtime that aborts the whole process
unless OpenSSL 1.1 (``libssl.so.1.1``) can be loaded and ICU is found. Current
distributions ship neither OpenSSL 1.1 nor an ICU version .NET Core 3.1 knows, so:

* ``prepare_process()`` runs in a worker before ``import aspose.ocr``: it tells .NET
  which ICU to use (``CLR_ICU_VERSION_OVERRIDE``) and preloads a private OpenSSL 1.1.
* ``provision_libssl()`` (``ocrpool doctor --fix``) fetches that OpenSSL 1.1 from the
  distribution's previous release, through apt with a private state directory, so the
  system is never touched, and caches it per user.
* ``run_in_child()`` runs a function in a throwaway process, so a runtime abort in
  ``doctor`` or ``models`` is reported instead of killing the command.

Everything that reads the system takes its inputs as arguments (paths, environment,
file text), so the selection logic is tested on fake trees.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import multiprocessing
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
from pebble import ProcessExpired, concurrent

from ocrpool.errors import JobTimeout, OcrPoolError, WorkerCrashed

T = TypeVar("T")

LIBSSL_DIR_VARIABLE = "OCRPOOL_LIBSSL_DIR"
"""Points at a directory holding ``libssl.so.1.1`` and ``libcrypto.so.1.1``."""
ICU_VARIABLE = "CLR_ICU_VERSION_OVERRIDE"
INVARIANT_VARIABLE = "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"
LIBCRYPTO = "libcrypto.so.1.1"
LIBSSL = "libssl.so.1.1"
LIBSSL_PACKAGE = "libssl1.1"

_APT_TIMEOUT_S = 300.0
_SCRATCH_DIRS = (
    "sources.list.d",
    "preferences.d",
    "state/lists/partial",
    "cache/archives/partial",
    "download",
    "unpacked",
    "libs",
)
_TAIL_CHARS = 4000


class RuntimeSetupError(OcrPoolError):
    """A native prerequisite of the Aspose runtime is missing and was not provided.

    ``remedy`` says, in one or two sentences, what the user must do.
    """


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


# --------------------------------------------------------------------------- locating


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


# --------------------------------------------------------------------------- provisioning


@dataclasses.dataclass(frozen=True)
class AptSource:
    """One ``deb`` entry of the system's apt sources."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None


@dataclasses.dataclass(frozen=True)
class LegacyArchive:
    """The release of a distribution that still ships ``libssl1.1``, and its keyring."""

    suite: str
    keyring: str


LEGACY_ARCHIVES = {
    "debian": LegacyArchive("bullseye", "/usr/share/keyrings/debian-archive-keyring.gpg"),
    "ubuntu": LegacyArchive("focal", "/usr/share/keyrings/ubuntu-archive-keyring.gpg"),
}

MANUAL_REMEDY = (
    "install OpenSSL 1.1 yourself: get the libssl1.1 package for your architecture "
    "(Debian bullseye or Ubuntu focal), unpack it with `dpkg -x libssl1.1_*.deb DIR`, and "
    f"set {LIBSSL_DIR_VARIABLE}=DIR/usr/lib/<arch-triplet> (the directory holding "
    f"{LIBCRYPTO} and {LIBSSL})"
)


def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` as a dict (shell-style quoting)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            fields[key] = " ".join(shlex.split(value)) if value else ""
    return fields


def parse_one_line_sources(text: str) -> list[AptSource]:
    """The ``deb [options] uri suite component...`` format of ``sources.list``."""
    sources = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        options: dict[str, str] = {}
        if words and words[0].startswith("["):
            closing = next((i for i, word in enumerate(words) if word.endswith("]")), None)
            if closing is None:
                continue
            for option in " ".join(words[: closing + 1]).strip("[]").split():
                key, _, value = option.partition("=")
                options[key] = value
            words = words[closing + 1 :]
        if len(words) >= 2:
            sources.append(
                AptSource(words[0], (words[1],), tuple(words[2:]), options.get("signed-by"))
            )
    return sources


def parse_deb822_sources(text: str) -> list[AptSource]:
    """The deb822 format of ``*.sources`` files: stanzas of ``Field: value`` lines."""
    sources = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        suites = tuple(stanza.get("suites", "").split())
        components = tuple(stanza.get("components", "").split())
        signed_by = stanza.get("signed-by") or None
        for uri in stanza.get("uris", "").split():
            sources.append(AptSource(uri, suites, components, signed_by))
    return sources


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = [{}]
    field = None
    for line in text.splitlines():
        if not line.strip():
            if stanzas[-1]:
                stanzas.append({})
            field = None
        elif line.startswith("#"):
            continue
        elif line[0].isspace() and field is not None:
            stanzas[-1][field] += "\n" + line.strip()
        else:
            name, _, value = line.partition(":")
            field = name.strip().lower()
            stanzas[-1][field] = value.strip()
    return [stanza for stanza in stanzas if stanza]


def system_apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every ``deb`` entry of ``sources.list`` and ``sources.list.d/*.list|*.sources``."""
    sources = []
    main_list = etc_apt / "sources.list"
    if main_list.is_file():
        sources += parse_one_line_sources(main_list.read_text(errors="replace"))
    parts = etc_apt / "sources.list.d"
    for path in sorted(parts.glob("*.list")) if parts.is_dir() else ():
        sources += parse_one_line_sources(path.read_text(errors="replace"))
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else ():
        sources += parse_deb822_sources(path.read_text(errors="replace"))
    return sources


def legacy_source_line(sources: Sequence[AptSource], os_release: Mapping[str, str]) -> str:
    """The apt line for the release that ships ``libssl1.1``, on the system's own mirror.

    The mirror is the one the system already uses for its own release, signed by the
    distribution's keyring (or by the default keyrings): never a hard-coded host.
    """
    distro = os_release.get("ID", "")
    codename = os_release.get("VERSION_CODENAME", "")
    archive = LEGACY_ARCHIVES.get(distro)
    if archive is None:
        raise RuntimeSetupError(
            f"cannot fetch OpenSSL 1.1 automatically on {os_release.get('PRETTY_NAME', distro)!r}"
            " (only Debian and Ubuntu are known)",
            remedy=MANUAL_REMEDY,
        )
    for source in sources:
        if codename and codename in source.suites and source.signed_by in (None, archive.keyring):
            return f"deb [signed-by={archive.keyring}] {source.uri} {archive.suite} main"
    raise RuntimeSetupError(
        f"no apt source for {distro} {codename or '(no VERSION_CODENAME)'} signed by "
        f"{archive.keyring} in /etc/apt",
        remedy=MANUAL_REMEDY,
    )


def apt_options(root: Path, as_root: bool) -> list[str]:
    """``-o`` options that give apt a private source list, state and cache under ``root``."""
    settings = {
        "Dir::Etc::SourceList": root / "sources.list",
        "Dir::Etc::SourceParts": root / "sources.list.d",
        "Dir::Etc::Preferences": root / "preferences",
        "Dir::Etc::PreferencesParts": root / "preferences.d",
        "Dir::State": root / "state",
        "Dir::Cache": root / "cache",
        "Debug::NoLocking": "1",
    }
    if as_root:
        # apt drops to the _apt user to download, which cannot write into our tree.
        settings["APT::Sandbox::User"] = "root"
    return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]


def provision_libssl(
    cache_dir: Path | None = None,
    etc: Path = Path("/etc"),
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> Path:
    """Put OpenSSL 1.1 into the per-user cache (quick no-op when it is there already).

    apt verifies the package's signature and hash against the distribution keyring;
    ``dpkg -x`` unpacks it without installing. The result is moved into place in one
    rename, so a concurrent or interrupted run never leaves half a copy.
    """
    target = cache_dir if cache_dir is not None else default_cache_dir()
    if has_libssl(target):
        return target
    missing = [tool for tool in ("apt-get", "dpkg") if shutil.which(tool) is None]
    if missing:
        raise RuntimeSetupError(
            f"cannot fetch OpenSSL 1.1 automatically: {', '.join(missing)} not found",
            remedy=MANUAL_REMEDY,
        )
    os_release_path = etc / "os-release"
    os_release = parse_os_release(os_release_path.read_text() if os_release_path.is_file() else "")
    line = legacy_source_line(system_apt_sources(etc / "apt"), os_release)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".libssl-", dir=target.parent) as scratch:
        root = Path(scratch)
        for sub in _SCRATCH_DIRS:
            (root / sub).mkdir(parents=True)
        (root / "sources.list").write_text(line + "\n")
        options = apt_options(root, as_root=os.geteuid() == 0)
        _run_tool(run, ["apt-get", *options, "update"], root)
        _run_tool(run, ["apt-get", *options, "download", LIBSSL_PACKAGE], root / "download")
        debs = sorted((root / "download").glob(f"{LIBSSL_PACKAGE}_*.deb"))
        if not debs:
            raise RuntimeSetupError(
                f"apt-get download {LIBSSL_PACKAGE} left no package", remedy=MANUAL_REMEDY
            )
        _run_tool(run, ["dpkg", "-x", str(debs[-1]), str(root / "unpacked")], root)
        for name in (LIBCRYPTO, LIBSSL):
            found = sorted((root / "unpacked").rglob(name))
            if not found:
                raise RuntimeSetupError(f"{debs[-1].name} holds no {name}", remedy=MANUAL_REMEDY)
            shutil.copy2(found[0], root / "libs" / name)
        try:
            (root / "libs").rename(target)
        except OSError:
            if not has_libssl(target):  # not another run finishing first
                raise
    return target


def _run_tool(
    run: Callable[..., subprocess.CompletedProcess[str]], argv: list[str], cwd: Path
) -> None:
    try:
        done = run(argv, cwd=cwd, capture_output=True, text=True, timeout=_APT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeSetupError(
            f"`{argv[0]} {argv[-1]}` did not finish in {_APT_TIMEOUT_S:.0f} s (no network?)",
            remedy=MANUAL_REMEDY,
        ) from None
    if done.returncode != 0:
        raise RuntimeSetupError(
            f"`{argv[0]} {argv[-1]}` failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-_TAIL_CHARS:]}",
            remedy=MANUAL_REMEDY,
        )


# --------------------------------------------------------------------------- isolation


def run_in_child(function: Callable[..., T], *args: Any, timeout: float) -> T:
    """``function(*args)`` in a fresh spawned process; its result or its exception.

    ``function`` must be importable (module level). The child's stdout and stderr go to
    a temporary file, so native chatter cannot garble the caller's output; when the
    child dies (``WorkerCrashed``: a SIGABRT of the .NET runtime, say) or runs past
    ``timeout`` (``JobTimeout``), the error carries that file's tail.
    """
    context = multiprocessing.get_context("spawn")
    with tempfile.NamedTemporaryFile(prefix="ocrpool-child-", suffix=".log") as log:
        # pebble 5 reads ``context`` (its type hints say ``mp_context``, which it ignores,
        # silently forking instead).
        call = concurrent.process(timeout=timeout, context=context)(  # type: ignore[call-overload]
            _call_redirected
        )
        try:
            result: T = call(log.name, function, args).result()
        except ProcessExpired as exc:
            raise WorkerCrashed(
                f"the child process died ({describe_exitcode(exc.exitcode)})",
                exitcode=exc.exitcode,
                signal=signal_name(exc.exitcode),
                stderr_tail=_tail(log.name),
            ) from None
        except FutureTimeout:
            raise JobTimeout(
                f"the child process did not finish in {timeout:g} s",
                timeout=timeout,
                stderr_tail=_tail(log.name),
            ) from None
    return result


def _call_redirected(log_path: str, function: Callable[..., T], args: tuple[Any, ...]) -> T:
    # Both levels: native code writes to fds 1 and 2, and a spawned child may have
    # inherited Python-level stream objects that write elsewhere (pytest's capture).
    log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    sys.stdout = sys.stderr = log
    return function(*args)


def signal_name(exitcode: int | None) -> str | None:
    """``"SIGABRT"`` for a process killed by SIGABRT (exit code -6), else ``None``."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def describe_exitcode(exitcode: int | None) -> str:
    name = signal_name(exitcode)
    if name is not None:
        return f"killed by {name}"
    return "exit status unknown" if exitcode is None else f"exit code {exitcode}"


def _tail(path: str) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - _TAIL_CHARS))
        return handle.read().decode("utf-8", "replace")
