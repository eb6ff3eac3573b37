"""Whose fault a worker's end was, and what it costs: one pure function of the facts.

The supervisor gathers the facts of an end (``Death``) and ``judge`` gives the verdict.
Only the engine can break a pool, and only by failing its start: every worker's start
runs a warm-up recognition of a page known to be good, so a worker that dies holding a
job after that warm-up is evidence against the job's input, whose retries and quarantine
pay. A death with nothing started in hand that the pool did not cause is the outside's
(the OOM killer, an operator): the worker is replaced, nothing more. The design page's
section shows this table; ``tests/test_pool_blame.py`` checks every row.

=========================================  ===========  ==================================
death                                      blamed       cost
=========================================  ===========  ==================================
retired (quota, soft memory limit)         nobody       none
shutdown, cancel                           caller       its running job fails
job past ``job_timeout``                   input        the job fails (``JobTimeout``)
job past ``job_timeout``, worker stopped   outside      an attempt; the job is retried
  (SIGSTOP) by someone else
job never acknowledged past the timeout    outside      none: the job is queued again
hard memory limit during a job             input        an attempt (``MemoryLimitExceeded``)
crash or outside SIGKILL, job started      input        an attempt (``WorkerCrashed``)
fork server died (its workers with it)     outside      none: the job is queued again
timeout or cancel that landed after its    nobody       none: the job started after it
  job ended                                             is queued again
crash or outside SIGKILL, nothing started  outside      none: the worker is replaced
outside SIGKILL, SIGTERM or SIGSTOP while  outside      none: the worker is replaced
  starting                                              (deaths from outside in a row
                                                        back off its start, 0.25-2 s)
start failed or timed out                  engine       a start failure; ``max_start_failures``
                                                        in a row break the pool
=========================================  ===========  ==================================

A job the worker held but never started (SENT) always goes back to the queue unblamed, and
so does a started one whose cost is none.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from ocrpool.stats import ExitCause

RETIREMENTS = frozenset({ExitCause.MAX_JOBS, ExitCause.SOFT_RSS})
"""Planned ends of a healthy worker, which closes itself: an outside SIGKILL that cuts one
short is counted as the kill it was (an outside kill during shutdown stays ``shutdown``)."""
PLANNED = RETIREMENTS | {ExitCause.SHUTDOWN}
"""Causes the pool chose; their logs are not worth quoting."""
LOST_STATUS = 255
"""What multiprocessing's fork server reports when it died before telling a worker's exit
status: its workers die with it (parent-death signal), a kill from outside."""


class Blamed(str, enum.Enum):
    NOBODY = "nobody"
    CALLER = "caller"
    INPUT = "input"
    OUTSIDE = "outside"
    ENGINE = "engine"


class Cost(enum.Enum):
    """What the job a worker had started pays for its end."""

    NONE = "none"
    """No job had started (a never-started one is queued again regardless)."""
    ATTEMPT = "attempt"
    """One attempt: retried on a fresh worker while retries remain, then quarantined."""
    FAIL = "fail"
    """The job ends with its error, not retried (a timeout, a cancel, a shutdown)."""


@dataclass(frozen=True)
class Death:
    """What was observed when a worker ended."""

    end_cause: ExitCause | None
    """Why the pool stopped it, recorded before any signal; None: the pool did not."""
    exitcode: int | None
    """Negative: the signal that ended it (multiprocessing's convention)."""
    sent_kill: bool
    """The pool sent it a SIGKILL: one it did not send came from outside."""
    warm: bool
    """Its engine passed the warm-up recognition (it said Ready)."""
    started_job: bool
    """It held a job it had acknowledged: that input was in the engine's hands."""
    frozen: bool = False
    """It was stopped (SIGSTOP, a debugger) when the pool gave up waiting for it."""
    aimed_elsewhere: bool = False
    """The pool stopped it for a job (a timeout, a cancel) that ended before the signal
    landed: the job it had started since is not the one the stop meant."""


@dataclass(frozen=True)
class Verdict:
    cause: ExitCause
    blamed: Blamed
    cost: Cost

    @property
    def start_failure(self) -> bool:
        """Counts towards ``max_start_failures``: the engine could not start."""
        return self.blamed is Blamed.ENGINE

    @property
    def backs_off(self) -> bool:
        """Slows the next start (``restarts.py``), never stops it: deaths from outside
        that keep coming (an OOM killer) get room. An input's death does not: the
        replacement's warm-up paces it, and the next input should not wait."""
        return self.blamed is Blamed.OUTSIDE


def judge(death: Death) -> Verdict:
    """The verdict of the table above for ``death``."""
    cause = classify_exit(death)
    if cause in PLANNED:
        if cause in RETIREMENTS:
            return Verdict(cause, Blamed.NOBODY, Cost.NONE)
        return Verdict(cause, Blamed.CALLER, Cost.FAIL)
    if cause in (ExitCause.CANCELLED, ExitCause.TIMEOUT) and death.aimed_elsewhere:
        return Verdict(cause, Blamed.NOBODY, Cost.NONE)
    if cause is ExitCause.CANCELLED:
        return Verdict(cause, Blamed.CALLER, Cost.FAIL)
    if cause is ExitCause.START_FAILED:
        return Verdict(cause, Blamed.OUTSIDE if death.frozen else Blamed.ENGINE, Cost.NONE)
    if cause is ExitCause.TIMEOUT:
        if not death.started_job:
            return Verdict(cause, Blamed.OUTSIDE, Cost.NONE)
        if death.frozen:
            return Verdict(cause, Blamed.OUTSIDE, Cost.ATTEMPT)
        return Verdict(cause, Blamed.INPUT, Cost.FAIL)
    if cause is ExitCause.KILLED and (not death.warm or death.exitcode == LOST_STATUS):
        return Verdict(cause, Blamed.OUTSIDE, Cost.NONE)
    if death.started_job:  # a crash, an outside kill or the hard limit during a job
        return Verdict(cause, Blamed.INPUT, Cost.ATTEMPT)
    return Verdict(cause, Blamed.OUTSIDE, Cost.NONE)


_KILLS = frozenset(
    -signum for signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
)
"""Exit statuses of a worker killed or asked to end (``kill PID``, a hang-up), signals no
engine fails with: one the pool did not send (it records an ``end_cause`` first) is an
outside kill, not a crash nor, before Ready, a failed start."""


def classify_exit(death: Death) -> ExitCause:
    """The cause the pool recorded, else what the exit status says. A SIGKILL the pool
    did not send (or a status lost with the fork server) is an outside kill, also when
    it cut short a retirement; a SIGKILL or a termination request (SIGTERM, SIGHUP,
    SIGINT) with no cause recorded is one too. Anything else is a crash, or a failed
    start when the worker never became ready."""
    outside_kill = (
        death.exitcode == -signal.SIGKILL and not death.sent_kill
    ) or death.exitcode == LOST_STATUS
    if death.end_cause is not None and not (death.end_cause in RETIREMENTS and outside_kill):
        return death.end_cause
    if outside_kill or death.exitcode in _KILLS:
        return ExitCause.KILLED
    return ExitCause.CRASH if death.warm else ExitCause.START_FAILED
