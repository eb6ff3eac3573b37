"""The Aspose runtime on fake trees: finding OpenSSL 1.1 and ICU, choosing the apt source,
provisioning with a scripted apt, and running functions in a throwaway child."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ocrpool.engines.aspose import child, provision, runtime
from ocrpool.engines.aspose.provision import AptSource
from ocrpool.engines.aspose.runtime import LibsslOrigin, RuntimeSetupError
from ocrpool.errors import JobTimeout, WorkerCrashed
from ocrpool.processes import describe_exit, signal_name

DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
UBUNTU_24 = (
    'PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian\n'
    "VERSION_CODENAME=noble\nUBUNTU_CODENAME=noble\n"
)
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
UBUNTU_KEYRING = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"

DEBIAN_SOURCES = f"""\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: {DEBIAN_KEYRING}

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: {DEBIAN_KEYRING}
"""

UBUNTU_SOURCES = f"""\
Types: deb
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: {UBUNTU_KEYRING}
"""


def make_libssl_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in (runtime.LIBCRYPTO, runtime.LIBSSL):
        (directory / name).write_bytes(b"\x7fELF")
    return directory


def never_on_system() -> bool:
    return False


def always_on_system() -> bool:
    return True


# ----------------------------------------------------------------- os-release and sources


def test_os_release_is_parsed_with_shell_quoting() -> None:
    fields = provision.parse_os_release(UBUNTU_24 + "# comment\n\n")
    assert fields["ID"] == "ubuntu"
    assert fields["VERSION_CODENAME"] == "noble"
    assert fields["PRETTY_NAME"] == "Ubuntu 24.04 LTS"


def test_one_line_sources_keep_deb_entries_with_their_options() -> None:
    text = f"""\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by={DEBIAN_KEYRING}] http://deb.debian.org/debian bookworm main contrib
deb-src http://deb.debian.org/debian bookworm main
deb http://archive.ubuntu.com/ubuntu focal main restricted # trailing comment
deb [ signed-by=/etc/apt/keyrings/other.gpg ] https://repo.example/apt stable main
"""
    assert provision.parse_one_line_sources(text) == [
        AptSource(
            "http://deb.debian.org/debian", ("bookworm",), ("main", "contrib"), DEBIAN_KEYRING
        ),
        AptSource("http://archive.ubuntu.com/ubuntu", ("focal",), ("main", "restricted")),
        AptSource(
            "https://repo.example/apt", ("stable",), ("main",), "/etc/apt/keyrings/other.gpg"
        ),
    ]


def test_deb822_sources_skip_disabled_and_source_only_stanzas() -> None:
    text = (
        DEBIAN_SOURCES
        + """
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://one.example/apt https://two.example/apt
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF...
 -----END PGP PUBLIC KEY BLOCK-----
"""
    )
    sources = provision.parse_deb822_sources(text)
    assert [s.uri for s in sources] == [
        "http://deb.debian.org/debian",
        "http://deb.debian.org/debian-security",
        "https://one.example/apt",
        "https://two.example/apt",
    ]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].signed_by == DEBIAN_KEYRING
    assert "BEGIN PGP" in (sources[2].signed_by or "")


def test_system_sources_read_every_list_and_sources_file(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://main.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEBIAN_SOURCES)
    (tmp_path / "sources.list.d" / "extra.list").write_text("deb http::/extra bookworm main\n")
    (tmp_path / "sources.list.d" / "off.list.disabled").write_text("deb http://off bookworm x\n")
    uris = [source.uri for source in provision.system_apt_sources(tmp_path)]
    assert uris == [
        "http://main.example/debian",
        "http::/extra",
        "http://deb.debian.org/debian",
        "http://deb.debian.org/debian-security",
    ]


def test_debian_gets_bullseye_from_its_own_mirror() -> None:
    sources = [
        AptSource("https://packages.example/apt", ("cloud-sdk-bookworm",), ("main",)),
        AptSource("https://mirror.example/x", ("bookworm",), ("main",), "/other-key.gpg"),
        *provision.parse_deb822_sources(DEBIAN_SOURCES),
    ]
    line = provision.legacy_source_line(sources, provision.parse_os_release(DEBIAN_12))
    assert line == f"deb [signed-by={DEBIAN_KEYRING}] http://deb.debian.org/debian bullseye main"


def test_ubuntu_gets_focal_with_the_ubuntu_keyring() -> None:
    sources = provision.parse_deb822_sources(UBUNTU_SOURCES)
    line = provision.legacy_source_line(sources, provision.parse_os_release(UBUNTU_24))
    assert line == f"deb [signed-by={UBUNTU_KEYRING}] http://archive.ubuntu.com/ubuntu/ focal main"


def test_an_unsigned_one_line_entry_of_the_release_is_accepted() -> None:
    sources = provision.parse_one_line_sources("deb http://ftp.example.org/debian bookworm main\n")
    line = provision.legacy_source_line(sources, provision.parse_os_release(DEBIAN_12))
    assert "http://ftp.example.org/debian bullseye main" in line


def test_unknown_distribution_says_what_to_install() -> None:
    with pytest.raises(RuntimeSetupError) as caught:
        provision.legacy_source_line([], {"ID": "fedora", "PRETTY_NAME": "Fedora Linux 40"})
    assert "Fedora Linux 40" in caught.value.message
    assert runtime.LIBSSL_DIR_VARIABLE in caught.value.remedy


def test_no_source_for_the_release_is_an_error() -> None:
    sources = provision.parse_deb822_sources(DEBIAN_SOURCES)
    with pytest.raises(RuntimeSetupError, match="trixie"):
        provision.legacy_source_line(sources, {"ID": "debian", "VERSION_CODENAME": "trixie"})


def test_apt_options_sandbox_user_only_as_root(tmp_path: Path) -> None:
    as_user = provision.apt_options(tmp_path, as_root=False)
    as_root = provision.apt_options(tmp_path, as_root=True)
    assert f"Dir::Etc::SourceList={tmp_path}/sources.list" in as_user
    assert f"Dir::State={tmp_path}/state" in as_user
    assert "Debug::NoLocking=1" in as_user
    assert "APT::Sandbox::User=root" not in as_user
    assert as_root[-2:] == ["-o", "APT::Sandbox::User=root"]


# ----------------------------------------------------------------- finding OpenSSL and ICU


def test_libssl_dir_variable_wins(tmp_path: Path) -> None:
    chosen = make_libssl_dir(tmp_path / "mine")
    make_libssl_dir(tmp_path / "cache")
    found = runtime.find_libssl(
        {runtime.LIBSSL_DIR_VARIABLE: str(chosen)}, tmp_path / "cache", always_on_system
    )
    assert found == runtime.LibsslLocation(LibsslOrigin.ENVIRONMENT, chosen)


def test_libssl_dir_variable_without_the_libraries_is_an_error(tmp_path: Path) -> None:
    make_libssl_dir(tmp_path / "cache")
    with pytest.raises(RuntimeSetupError, match="does not hold"):
        runtime.find_libssl({runtime.LIBSSL_DIR_VARIABLE: str(tmp_path)}, tmp_path / "cache")


def test_cache_then_system_then_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert runtime.find_libssl({}, cache, never_on_system) is None
    system = runtime.find_libssl({}, cache, always_on_system)
    assert system == runtime.LibsslLocation(LibsslOrigin.SYSTEM, None)
    make_libssl_dir(cache)
    cached = runtime.find_libssl({}, cache, always_on_system)
    assert cached == runtime.LibsslLocation(LibsslOrigin.CACHE, cache)


def test_icu_major_is_the_newest_installed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in ("libicuuc.so", "libicuuc.so.67", "libicuuc.so.72.1", "libicui18n.so.74"):
        (tmp_path / "a" / name).touch()
    (tmp_path / "b" / "libicuuc.so.72").touch()
    assert runtime.icu_major([tmp_path / "a", tmp_path / "b", tmp_path / "missing"]) == 72
    assert runtime.icu_major([tmp_path / "missing"]) is None


def test_globalization_respects_the_user_then_pins_icu_then_goes_invariant() -> None:
    pinned = runtime.choose_globalization({}, 72)
    assert (pinned.variable, pinned.value) == (runtime.ICU_VARIABLE, "72")
    invariant = runtime.choose_globalization({}, None)
    assert (invariant.variable, invariant.value) == (runtime.INVARIANT_VARIABLE, "1")
    users = runtime.choose_globalization({runtime.INVARIANT_VARIABLE: "0"}, 72)
    assert (users.variable, users.value, users.reason) == (
        runtime.INVARIANT_VARIABLE,
        "0",
        "set by the user",
    )


def test_prepare_process_sets_icu_before_failing_on_missing_libssl(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libicuuc.so.72").touch()
    environ = {runtime.LIBSSL_DIR_VARIABLE: str(tmp_path / "empty")}
    with pytest.raises(RuntimeSetupError):
        runtime.prepare_process(environ, tmp_path / "cache", [tmp_path / "lib"])
    assert environ[runtime.ICU_VARIABLE] == "72"


def test_runtime_tuning_sets_complus_variables_and_keeps_the_users() -> None:
    tuned = {runtime.TIERED_COMPILATION_VARIABLE: "0", runtime.CONCURRENT_GC_VARIABLE: "0"}
    environ: dict[str, str] = {}
    assert runtime.tune_runtime(runtime.RuntimeTuning(), environ) == tuned
    assert environ == tuned
    assert runtime.RuntimeTuning(tiered_compilation=True, concurrent_gc=True).environment() == {}
    users = {runtime.TIERED_COMPILATION_VARIABLE: "1"}
    applied = runtime.tune_runtime(runtime.RuntimeTuning(), users)
    assert applied == {runtime.CONCURRENT_GC_VARIABLE: "0"}
    assert users[runtime.TIERED_COMPILATION_VARIABLE] == "1"


# ----------------------------------------------------------------- provisioning


class ScriptedApt:
    """Stands in for ``subprocess.run`` of apt-get and dpkg: records the calls and
    leaves on disk what the real tools would."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, argv: list[str], cwd: Path, **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        if argv[-1] == self.fail_on:
            return subprocess.CompletedProcess(argv, 100, "", "E: Unable to locate package")
        if argv[-1] == runtime.LIBSSL_PACKAGE:
            (Path(cwd) / "libssl1.1_1.1.1w-0+deb11u1_amd64.deb").write_bytes(b"!<arch>")
        if argv[0] == "dpkg":
            make_libssl_dir(Path(argv[-1]) / "usr" / "lib" / "x86_64-linux-gnu")
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.fixture
def fake_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An /etc with Debian 12's os-release and sources, and apt-get/dpkg on PATH."""
    etc = tmp_path / "etc"
    (etc / "apt" / "sources.list.d").mkdir(parents=True)
    (etc / "os-release").write_text(DEBIAN_12)
    (etc / "apt" / "sources.list.d" / "debian.sources").write_text(DEBIAN_SOURCES)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("apt-get", "dpkg"):
        (tools / tool).touch(mode=0o755)
    monkeypatch.setenv("PATH", str(tools))
    return etc


def test_provisioning_fetches_once_into_the_cache(tmp_path: Path, fake_system: Path) -> None:
    apt = ScriptedApt()
    cache = tmp_path / "cache" / "libssl1.1"
    assert provision.provision_libssl(cache, fake_system, apt) == cache
    assert runtime.has_libssl(cache)
    assert [call[0] for call in apt.calls] == ["apt-get", "apt-get", "dpkg"]
    assert [call[-1] for call in apt.calls[:2]] == ["update", runtime.LIBSSL_PACKAGE]
    assert sorted(os.listdir(cache.parent)) == ["libssl1.1"]  # scratch removed

    provision.provision_libssl(cache, fake_system, apt)
    assert len(apt.calls) == 3


def test_provisioning_writes_the_chosen_source_for_apt(tmp_path: Path, fake_system: Path) -> None:
    seen: list[str] = []

    def apt(argv: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if argv[-1] == "update":
            source_list = argv[argv.index("-o") + 1].partition("=")[2]
            seen.append(Path(source_list).read_text())
        return ScriptedApt()(argv, cwd, **kwargs)

    provision.provision_libssl(tmp_path / "cache", fake_system, apt)
    assert seen == [
        f"deb [signed-by={DEBIAN_KEYRING}] http://deb.debian.org/debian bullseye main\n"
    ]


def test_a_failing_apt_gives_the_manual_remedy(tmp_path: Path, fake_system: Path) -> None:
    with pytest.raises(RuntimeSetupError) as caught:
        provision.provision_libssl(
            tmp_path / "cache", fake_system, ScriptedApt(fail_on=runtime.LIBSSL_PACKAGE)
        )
    assert "Unable to locate package" in caught.value.message
    assert "dpkg -x" in caught.value.remedy
    assert not (tmp_path / "cache").exists()


def test_without_apt_the_manual_remedy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeSetupError, match="apt-get, dpkg not found"):
        provision.provision_libssl(tmp_path / "cache", tmp_path, ScriptedApt())


# ----------------------------------------------------------------- run_in_child


def child_pid_and_args(*args: int) -> tuple[int, tuple[int, ...]]:
    print("noise on stdout that must not reach the caller")
    return os.getpid(), args


def child_raises() -> None:
    raise RuntimeSetupError("nothing here", remedy="install it")


def child_aborts() -> None:
    print("last words before the abort", file=sys.stderr, flush=True)
    os.abort()


def child_hangs() -> None:
    print("waiting forever", file=sys.stderr, flush=True)
    threading.Event().wait()


def test_child_returns_its_result(capfd: pytest.CaptureFixture[str]) -> None:
    pid, args = child.run_in_child(child_pid_and_args, 1, 2, timeout=60)
    assert pid != os.getpid()
    assert args == (1, 2)
    assert "noise" not in capfd.readouterr().out


def test_child_errors_come_back_typed() -> None:
    with pytest.raises(RuntimeSetupError) as caught:
        child.run_in_child(child_raises, timeout=60)
    assert caught.value.remedy == "install it"


def test_child_abort_is_reported_with_signal_and_stderr_tail() -> None:
    with pytest.raises(WorkerCrashed) as caught:
        child.run_in_child(child_aborts, timeout=60)
    assert caught.value.signal == "SIGABRT"
    assert "killed by SIGABRT" in caught.value.message
    assert "last words before the abort" in caught.value.stderr_tail


def test_child_past_its_timeout_is_stopped() -> None:
    with pytest.raises(JobTimeout) as caught:
        child.run_in_child(child_hangs, timeout=1)
    assert "waiting forever" in caught.value.stderr_tail


def test_exit_codes_are_described() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(None) == "exit status unknown"
    assert signal_name(0) is None
