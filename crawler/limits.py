"""Bounds on one parse of what a publisher sent: the memory it may add, the CPU time it may take.

In:  a function and its arguments (a page's, a feed's or a sitemap's text), the size of the input
     in bytes, and :class:`ParseLimits` (settings ``VEILLE_PARSE_MEMORY_MB``,
     ``VEILLE_PARSE_TIME_BASE``, ``VEILLE_PARSE_TIME_PER_MB``).
Out: the function's result, or :class:`ParseRefused` with the reason ``too_large`` (it needed
     more memory than allowed) or ``too_slow`` (more CPU time than allowed).

:func:`bounded` runs in the process that does the parse, never in the crawl process: an
extraction worker (``crawler/extraction_worker.py``). It sets, for that one call:

- ``RLIMIT_DATA`` to the process's data size plus ``memory_mb`` (an extraction worker counts
  from its own start): an allocation beyond it fails, Python raises ``MemoryError`` and the
  parse is refused as ``too_large``;
- a CPU-time timer (``ITIMER_PROF``) of ``time_base + time_per_mb`` × the input's size in MiB:
  its signal raises :class:`OutOfTime` between two bytecodes, a ``BaseException`` so that the
  ``except Exception`` of the libraries does not swallow it (``too_slow``). CPU time, not wall
  time, so a machine busy with other work does not refuse a page it would have read;
- ``RLIMIT_CPU`` a few seconds past that budget: a C function that holds on past the timer
  (one regular expression over the whole document) is ended by the kernel, which kills the
  process (``SIGXCPU``); the extraction pool reports that as ``too_slow``.

feedparser's sanitizer, trafilatura and lxml each have inputs whose cost grows faster than their
size (see ``python -m bench hostile``); these limits hold whatever the input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

MIB = 1 << 20
# Seconds of CPU between the timer (a clean refusal) and RLIMIT_CPU (the kernel's kill).
HARD_STOP_AFTER = 3


@dataclass(frozen=True)
class ParseLimits:
    """How much one parse may take: ``memory_mb`` MiB more, and ``time_base + time_per_mb`` ×
    the input's MiB seconds of CPU."""

    memory_mb: int
    time_base: float
    time_per_mb: float

    @classmethod
    def from_settings(cls, settings: Any) -> ParseLimits:
        return cls(
            memory_mb=settings.getint("VEILLE_PARSE_MEMORY_MB"),
            time_base=settings.getfloat("VEILLE_PARSE_TIME_BASE"),
            time_per_mb=settings.getfloat("VEILLE_PARSE_TIME_PER_MB"),
        )

    @classmethod
    def defaults(cls) -> ParseLimits:
        """The limits of ``crawler/settings.py``, for a pool made outside a crawl."""
        from crawler import settings  # here: the workers import this module, not the settings

        return cls(
            settings.VEILLE_PARSE_MEMORY_MB,
            settings.VEILLE_PARSE_TIME_BASE,
            settings.VEILLE_PARSE_TIME_PER_MB,
        )

    def cpu_seconds(self, size: int) -> float:
        """The CPU time allowed to parse ``size`` bytes."""
        return self.time_base + self.time_per_mb * size / MIB


class ParseRefused(Exception):
    """A parse stopped at its bounds: ``reason`` is ``too_large`` or ``too_slow``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
        self.usage: Any = None  # what the parse had taken, set by the pool that ran it

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class OutOfTime(BaseException):
    """Raised by the CPU timer's signal inside the parse (see the module docstring)."""


class _Timer:
    """The CPU timer of the parse under way; its signal raises only while a parse runs, so a
    signal arriving just as the parse ends cannot break the code that restores the limits.
    ``rang``: it went off during this parse (a library's bare ``except:`` may have turned
    :class:`OutOfTime` into an exception of its own: langdetect's profile loading does)."""

    running = False
    rang = False

    @classmethod
    def expired(cls, _signum: int, _frame: Any) -> None:
        if cls.running:
            cls.running = False
            cls.rang = True
            raise OutOfTime


def _statm(field: int) -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[field]) * resource.getpagesize()


def data_size() -> int:
    """This process's data segment (``/proc/self/statm``: data and stack), in bytes."""
    return _statm(5)


def resident_size() -> int:
    """This process's resident memory now, in bytes."""
    return _statm(1)


def cpu_time() -> float:
    """CPU seconds this process has used, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)


def give_memory_back() -> None:
    """After a parse that ran out of memory: collect, and hand freed pages back to the system
    (glibc's ``malloc_trim``), so the next parse starts from the usual size."""
    gc.collect()
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def prepare_process() -> None:
    """Once per parsing process: no core file when the kernel ends a parse with ``SIGXCPU``."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def bounded(
    func: Callable[..., T],
    args: tuple[Any, ...],
    size: int,
    limits: ParseLimits,
    ceiling: int | None = None,
) -> T:
    """``func(*args)`` within ``limits`` for an input of ``size`` bytes; :class:`ParseRefused`
    when it needs more. ``ceiling``: the data size the process may reach, in bytes (default:
    its size now plus ``limits.memory_mb``). Call it from the main thread of a process that does
    nothing else."""
    budget = limits.cpu_seconds(size)
    saved_data = resource.getrlimit(resource.RLIMIT_DATA)
    saved_cpu = resource.getrlimit(resource.RLIMIT_CPU)
    if ceiling is None:
        ceiling = data_size() + limits.memory_mb * MIB
    hard_stop = math.ceil(cpu_time() + budget + HARD_STOP_AFTER)
    signal.signal(signal.SIGPROF, _Timer.expired)
    resource.setrlimit(resource.RLIMIT_DATA, (_within(ceiling, saved_data[1]), saved_data[1]))
    resource.setrlimit(resource.RLIMIT_CPU, (_within(hard_stop, saved_cpu[1]), saved_cpu[1]))
    _Timer.running, _Timer.rang = True, False
    signal.setitimer(signal.ITIMER_PROF, budget)
    too_slow = ParseRefused(
        "too_slow", f"stopped after {budget:.1f} s of CPU, the limit for {size:,} bytes"
    )
    try:
        return func(*args)
    except OutOfTime:
        refused = too_slow
    except MemoryError:
        refused = ParseRefused(
            "too_large", f"it needed more than {limits.memory_mb} MiB of memory to parse"
        )
    except Exception:
        if not _Timer.rang:
            raise
        refused = too_slow
    finally:
        _Timer.running = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        resource.setrlimit(resource.RLIMIT_CPU, saved_cpu)
        resource.setrlimit(resource.RLIMIT_DATA, saved_data)
    # Out of the except clause: the parse's frames and what they held are released by now.
    give_memory_back()
    raise refused


def _within(value: int, hard: int) -> int:
    return value if hard == resource.RLIM_INFINITY else min(value, hard)
