"""``python -m benchmarks tune-engine``: what each setting of the engine's runtime costs.

Each setting runs in a pool worker of its own (``OcrPool`` of one worker, never recycled),
as ocrpool runs the engine; ``StudyEngine`` applies the setting when the worker starts it.
The settings are measured side by side in batches, each with a worker of the untuned
engine (``UNTUNED``: .NET's and Aspose's own defaults). A batch's workers take turns, one
job each, so every setting meets the same moments of the shared machine's load, and each
is compared with the untuned worker of its batch. Per worker:

- warm-up: CPU-s (the worker's own, from its fork to ready: runtime, models, warm-up
  image) and seconds (the pool's start); a recycle pays it again;
- CPU-s (the worker process's, read from outside when its timed jobs begin and end) and
  engine seconds per image over N jobs cycling three shipped images, after settling jobs;
  RSS after them (the worker's own report) and its slope per job;
- the runtime's own view: the worker's threads and virtual size, which show whether .NET
  honoured a setting given in the environment;
- in the first round, the text of every shipped and test image, compared with the
  untuned engine's and scored for word recall against ground truth (``recall``).

Rounds alternate the order of batches; within a batch the order of turns rotates
(``turn_order``). A last phase, when the adopted engine is among the settings, runs
workers of the untuned and of the adopted engine side by side (several of each, as one
worker's CPU varies by a few percent from another's) for more of a worker's life, to see
whether a gain measured early holds once .NET is warm.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.comparisons.scenarios import DOTNET_DEFAULTS
from benchmarks.harness.corpus import DEFAULT_CORPUS, TEST_DATA, images_in
from benchmarks.harness.method import run_order, select as select_named, slope, turn_order
from ocrpool import OcrPool
from ocrpool.engines.aspose.engine import AsposeEngine
from ocrpool.errors import OcrPoolError
from ocrpool.processes import MB

TIMED = ("eurotext.tif", "phototest.tif", "skimage-page.png")
"""The shipped images the timed jobs cycle through (single pages)."""
RUNTIME_PREFIX = "COMPlus_"
"""The runtime's settings in the environment: a study worker clears every one it is not
given, so the machine's environment cannot leak into a trial."""
UNTUNED = DOTNET_DEFAULTS
"""Engine options that turn every adopted tuning off: the engine before issue 14."""
JOB_TIMEOUT_S = 300.0
SHORT = "short"
LIFETIME = "lifetime"


class Group(enum.Enum):
    BASELINE = "baseline"
    RUNTIME = ".NET runtime"
    ONNX = "ONNX Runtime"
    THREADS = "threads"
    RECOGNITION = "recognition"
    ADOPTED = "adopted"


@dataclass(frozen=True)
class Setting:
    """One change from the untuned engine: environment variables set before the runtime
    starts, static ONNX Runtime session options (``OnnxRuntimeSessionOptions.set_<name>``,
    read when the engine is created), or engine options."""

    name: str
    group: Group
    meaning: str
    environment: Mapping[str, str] = field(default_factory=dict)
    onnx: Mapping[str, Any] = field(default_factory=dict)
    engine_options: Mapping[str, Any] = field(default_factory=dict)

    def study_options(self) -> dict[str, Any]:
        """The options of a ``StudyEngine`` with this setting."""
        return {
            **UNTUNED,
            **self.engine_options,
            "environment": dict(self.environment),
            "onnx": dict(self.onnx),
        }


def _env(name: str, value: str, meaning: str) -> Setting:
    variable = RUNTIME_PREFIX + name
    return Setting(f"{variable}={value}", Group.RUNTIME, meaning, environment={variable: value})


def _onnx(option: str, value: Any, meaning: str) -> Setting:
    return Setting(f"{option}={value}", Group.ONNX, meaning, onnx={option: value})


def _engine(group: Group, option: str, value: Any, meaning: str) -> Setting:
    return Setting(f"{option}={value}", group, meaning, engine_options={option: value})


BASELINE = Setting("untuned", Group.BASELINE, ".NET's and Aspose's defaults, one thread")
ADOPTED = Setting(
    "ocrpool defaults",
    Group.ADOPTED,
    "the engine's defaults: the adopted settings, applied by the engine itself",
    engine_options={name: (AsposeEngine.__init__.__kwdefaults__ or {})[name] for name in UNTUNED},
)
SETTINGS = (
    BASELINE,
    _env("TieredCompilation", "0", "compile each method once, fully optimised"),
    _env("TC_QuickJitForLoops", "1", "tiered compilation also for methods with loops"),
    _env("ReadyToRun", "0", "ignore precompiled code: JIT everything"),
    _env("gcConcurrent", "0", "no background GC thread"),
    _env("gcServer", "1", "server GC: one heap and GC thread per core"),
    _env("GCgen0size", "0x4000000", "64 MB gen0 budget: fewer young collections"),
    _env("GCHeapHardLimit", "0x10000000", "cap the managed heap at 256 MB"),
    _onnx("execution_mode", "ORT_SEQUENTIAL", "run graph nodes one by one (Aspose: parallel)"),
    _onnx("enable_memory_pattern", False, "no pre-planned tensor memory"),
    _onnx("enable_cpu_mem_arena", False, "no CPU memory arena: every tensor from malloc"),
    _engine(Group.THREADS, "threads", 2, "two intra-op threads per engine, not one"),
    _engine(Group.RECOGNITION, "detect_areas", "lean", "Aspose's fastest area detection"),
    _engine(Group.RECOGNITION, "upscale_small_font", True, "enlarge small print first"),
    _engine(
        Group.RECOGNITION, "automatic_color_inversion", False, "no look for light-on-dark text"
    ),
    _engine(
        Group.RECOGNITION, "retain_image_for_export", False, "no copy of each image kept for export"
    ),
    _engine(Group.RECOGNITION, "language_detection_level", "by_page", "one language per page"),
    _engine(Group.RECOGNITION, "language_detection_level", "by_word", "a language per word"),
    Setting(
        "runtime defaults",
        Group.ADOPTED,
        "the .NET runtime settings adopted in issue 14 alone (tiered compilation and "
        "concurrent GC off)",
        engine_options={"tiered_compilation": False, "concurrent_gc": False},
    ),
    ADOPTED,
)


def select(names: Sequence[str] | None) -> tuple[Setting, ...]:
    """The settings named (in table order, the untuned engine always first), or all."""
    return select_named(SETTINGS, [BASELINE.name, *names] if names else None, "setting")


class StudyEngine(AsposeEngine):
    """The aspose engine with a study setting applied before it starts: exactly the
    ``COMPlus_`` variables of ``environment`` (the others cleared), then the static ONNX
    Runtime session options of ``onnx``."""

    def __init__(
        self,
        *,
        environment: Mapping[str, str] | None = None,
        onnx: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._environment = dict(environment or {})
        self._onnx = dict(onnx or {})

    def start(self) -> None:
        for variable in [name for name in os.environ if name.startswith(RUNTIME_PREFIX)]:
            del os.environ[variable]
        os.environ.update(self._environment)
        if self._onnx:
            # Static, read when the engine creates its AsposeOcr: set them first (this
            # loads the runtime, with the environment already set).
            from ocrpool.engines.aspose.runtime import prepare_process

            prepare_process()
            import aspose.ocr as ocr

            for name, value in self._onnx.items():
                member = getattr(ocr.ExecutionModeOnnx, value) if isinstance(value, str) else value
                getattr(ocr.OnnxRuntimeSessionOptions, f"set_{name}")(member)
        super().start()


@dataclass(frozen=True)
class Workload:
    """What each worker of a batch runs: ``check_images`` once each (their text is kept;
    they settle the engine too), ``settle`` untimed jobs, then ``jobs`` timed ones, all
    cycling ``timed_images``."""

    timed_images: tuple[str, ...]
    jobs: int
    settle: int
    check_images: tuple[str, ...] = ()

    def image(self, index: int) -> str:
        return self.timed_images[index % len(self.timed_images)]


@dataclass(frozen=True)
class Trial:
    """One setting's worker in one batch of one round."""

    setting: str
    phase: str
    round_index: int
    batch: int
    jobs: int
    warmup_cpu_s: float
    warmup_s: float
    cpu_s_per_image: float
    s_per_image: float
    """Engine seconds (the worker's own timing of the job)."""
    rss_mb: float
    """After the timed jobs."""
    rss_slope_mb_per_job: float
    threads: int
    vm_gb: float
    texts: Mapping[str, tuple[str, ...]]
    """The pages' text of each check image, by image name."""
    error: str = ""


class Step(enum.Enum):
    """What a turn of a batch is for."""

    CHECK = "check"
    """Recognise a check image and keep its text."""
    SETTLE = "settle"
    TIMED = "timed"
    TAIL = "tail"
    """Close the timed window, after the other workers' jobs: the runtime's background
    work that a timed job set off (tiering, concurrent GC) is counted, not lost."""


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class _Subject:
    """One setting's pool of one worker, and what was measured of it so far."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.texts: dict[str, tuple[str, ...]] = {}
        self.engine_s: list[float] = []
        self.rss_mb: list[float] = []
        self.window_cpu_s = (float("nan"), float("nan"))
        """The worker's CPU when its first timed job began, and when the tail began."""
        self.error = ""
        started = time.monotonic()
        self._pool = OcrPool(
            1,
            spares=0,
            max_jobs_per_worker=None,
            max_rss_mb=None,
            job_timeout=JOB_TIMEOUT_S,
            engine=f"{__name__}:StudyEngine",
            engine_options=setting.study_options(),
        )
        self.warmup_s = time.monotonic() - started
        try:
            (worker,) = self._pool.stats().workers
            self._process = psutil.Process(worker.pid)
            self.warmup_cpu_s = _cpu_s(self._process)
        except BaseException:
            self.close()
            raise

    def take_turn(self, step: Step, path: str) -> None:
        if step is Step.TIMED and not self.engine_s:
            self.window_cpu_s = (_cpu_s(self._process), float("nan"))
        elif step is Step.TAIL:
            self.window_cpu_s = (self.window_cpu_s[0], _cpu_s(self._process))
        result = self._pool.recognize(path)
        if result.worker_pid != self._process.pid:
            # The pool retried the job on a new worker: this one's measures end here.
            self.error = f"worker {self._process.pid} ended; the pool replaced it"
            return
        if step is Step.CHECK:
            self.texts[Path(path).name] = tuple(page.text for page in result.pages)
        elif step is Step.TIMED:
            self.engine_s.append(result.attempts[-1].elapsed_s)
            self.rss_mb.append(float("nan") if result.rss_mb is None else result.rss_mb)

    def trial(self, phase: str, round_index: int, batch: int) -> Trial:
        n = len(self.engine_s)
        first, last = self.window_cpu_s
        return Trial(
            setting=self.setting.name,
            phase=phase,
            round_index=round_index,
            batch=batch,
            jobs=n,
            warmup_cpu_s=self.warmup_cpu_s,
            warmup_s=self.warmup_s,
            cpu_s_per_image=(last - first) / n,
            s_per_image=sum(self.engine_s) / n,
            rss_mb=self.rss_mb[-1],
            rss_slope_mb_per_job=slope(enumerate(self.rss_mb)),
            threads=self._process.num_threads(),
            vm_gb=self._process.memory_info().vms / MB / 1024,
            texts=self.texts,
        )

    def close(self) -> None:
        self._pool.shutdown(cancel_pending=True)


def failed_trial(setting: Setting, phase: str, round_index: int, batch: int, error: str) -> Trial:
    nan = float("nan")
    return Trial(
        setting.name, phase, round_index, batch, 0, nan, nan, nan, nan, nan, nan, 0, nan, {}, error
    )


def run_batch(
    settings: Sequence[Setting], workload: Workload, phase: str, round_index: int, batch: int
) -> list[Trial]:
    """Start one worker per setting, then let them take turns: every check image, the
    settling jobs, the timed ones, and a tail turn in the order of the last timed turn (so
    each worker's window closes after the others' last jobs). A setting that fails leaves
    the turns.

    The order rotates by one worker each turn (``turn_order``). Reversing it instead,
    as the scenarios' rounds do, lets the workers at either end run two jobs back to back
    at each change of direction, with their data still in the CPU's caches: in the
    study's first runs that alone made the untuned worker, always first, the cheapest of
    most batches."""
    subjects: list[_Subject] = []
    failed: list[Trial] = []
    try:
        for setting in settings:
            try:
                subjects.append(_Subject(setting))
            except (OcrPoolError, psutil.Error) as exc:
                failed.append(failed_trial(setting, phase, round_index, batch, _say(exc)))
        turns = [(Step.CHECK, path) for path in workload.check_images]
        turns += [(Step.SETTLE, workload.image(i)) for i in range(workload.settle)]
        turns += [(Step.TIMED, workload.image(i)) for i in range(workload.jobs)]
        orders = [turn_order(subjects, turn) for turn in range(len(turns))]
        turns.append((Step.TAIL, workload.image(workload.jobs)))
        orders.append(orders[-1])
        for (step, path), order in zip(turns, orders, strict=True):
            for subject in order:
                if subject.error:
                    continue
                try:
                    subject.take_turn(step, path)
                except (OcrPoolError, psutil.Error) as exc:
                    subject.error = _say(exc)
        trials = failed
        for subject in subjects:
            if not subject.error:
                try:
                    trials.append(subject.trial(phase, round_index, batch))
                    continue
                except psutil.Error as exc:  # the worker died after its last turn
                    subject.error = _say(exc)
            trials.append(failed_trial(subject.setting, phase, round_index, batch, subject.error))
        return trials
    finally:
        for subject in subjects:
            subject.close()


def _say(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def check_images(corpus: Path) -> tuple[str, ...]:
    """Every shipped and test image, each content once (shipped copies first)."""
    seen: set[bytes] = set()
    chosen = []
    for path in [*images_in(corpus), *images_in(TEST_DATA)]:
        content = path.read_bytes()
        if content not in seen:
            seen.add(content)
            chosen.append(str(path))
    return tuple(chosen)


def ground_truth(images: Sequence[str]) -> dict[str, str]:
    """The transcription of each image that has one, by image name."""
    truths = {}
    for image in images:
        truth = TEST_DATA / f"{Path(image).stem}.gt.txt"
        if truth.is_file():
            truths[Path(image).name] = truth.read_text()
    return truths


@dataclass(frozen=True)
class Plan:
    settings: tuple[Setting, ...]
    rounds: int
    jobs: int
    settle: int
    lifetime_jobs: int
    """Timed jobs of the lifetime phase (0: skip it)."""
    lifetime_replicas: int
    """Workers of each engine, untuned and adopted, side by side in the lifetime phase."""
    batch_size: int
    """Workers side by side, the untuned one included."""
    corpus: Path = DEFAULT_CORPUS

    def batches(self) -> list[tuple[Setting, ...]]:
        """The settings in batches of about equal size, each led by the untuned engine."""
        others = [s for s in self.settings if s is not BASELINE]
        count = max(1, -(-len(others) // max(1, self.batch_size - 1)))
        return [(BASELINE, *others[i::count]) for i in range(count)]

    def workload(self, phase: str, round_index: int) -> Workload:
        timed = tuple(str(self.corpus / name) for name in TIMED)
        if phase == LIFETIME:
            return Workload(timed, self.lifetime_jobs, self.settle)
        checks = check_images(self.corpus) if round_index == 0 else ()
        return Workload(timed, self.jobs, 0 if checks else self.settle, checks)


def run_study(plan: Plan, log: Callable[[str], None]) -> list[Trial]:
    """Every batch in every round (alternating order), then the lifetime phase."""
    phases = [(SHORT, plan.batches())]
    if plan.lifetime_jobs and ADOPTED in plan.settings:
        phases.append((LIFETIME, [(BASELINE, ADOPTED) * plan.lifetime_replicas]))
    trials = []
    for phase, batches in phases:
        for round_index in range(plan.rounds):
            numbered = tuple(enumerate(batches))
            for batch, settings in run_order(numbered, round_index):
                done = run_batch(
                    settings, plan.workload(phase, round_index), phase, round_index, batch
                )
                trials += done
                for trial in done:
                    log(
                        f"{phase} round {round_index + 1} batch {batch + 1} {trial.setting}: "
                        + (
                            trial.error
                            or f"{trial.cpu_s_per_image:.3f} CPU-s/image, warm-up "
                            f"{trial.warmup_cpu_s:.2f} CPU-s, RSS {trial.rss_mb:.0f} MB"
                        )
                    )
    return trials
