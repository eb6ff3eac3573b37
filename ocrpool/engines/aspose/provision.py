"""Fetch OpenSSL 1.1 for the Aspose runtime without touching the system (``doctor --fix``).

apt, with a private state directory, downloads ``libssl1.1`` from the distribution's
previous release (the mirror and keyring the system's own apt sources already name),
verifies it, and ``dpkg -x`` unpacks it into the per-user cache. Only ``doctor`` imports
this module; a worker never does.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ocrpool.engines.aspose.runtime import (
    LIBCRYPTO,
    LIBSSL,
    LIBSSL_DIR_VARIABLE,
    LIBSSL_PACKAGE,
    RuntimeSetupError,
    default_cache_dir,
    has_libssl,
)

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
