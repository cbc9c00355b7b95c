"""Memory a run may use, and the one rule by which every family refuses a run that would not fit.

Each family estimates, from its validated parameters alone, the bytes its run would hold at its peak and
passes the estimate to :func:`require_memory` *before* allocating anything. The estimate is compared with
:data:`MEMORY_FRACTION` of :func:`available_bytes`: the memory the kernel reports as available
(``MemAvailable``), capped by the process's control-group limit (cgroup v2 ``memory.max`` or v1
``memory.limit_in_bytes``) minus what the group already uses. A refusal is one line giving the estimate,
what it is made of, and the available memory.
"""

from __future__ import annotations

import os
import time

from neurodyn.errors import ResourceError

#: fraction of the available memory a run may plan to use (the rest absorbs estimation error and the
#: interpreter, Numba and xarray themselves)
MEMORY_FRACTION = 0.8

_CGROUP_LIMITS = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


#: seconds a reading of the available memory is reused (checking the points of a sweep reads it per point)
_CACHE_SECONDS = 1.0
_cache: list[float] = []  #: [monotonic time of the reading, bytes]


def available_bytes() -> int:
    """Memory this process may still use: MemAvailable, capped by a cgroup limit when there is one."""
    now = time.monotonic()
    if _cache and now - _cache[0] < _CACHE_SECONDS:
        return int(_cache[1])
    avail = _read_available()
    _cache[:] = [now, avail]
    return avail


def _read_available() -> int:
    avail = None
    meminfo = _read("/proc/meminfo")
    for line in (meminfo or "").splitlines():
        if line.startswith("MemAvailable:"):
            avail = int(line.split()[1]) * 1024
            break
    for limit_path, used_path in _CGROUP_LIMITS:
        text = (_read(limit_path) or "").strip()
        if not text:
            continue
        if text != "max":
            try:
                free = max(int(text) - int((_read(used_path) or "0").strip() or 0), 0)
            except ValueError:
                break
            avail = free if avail is None else min(avail, free)
        break  # the first hierarchy present is the one in force
    if avail is None:  # no /proc: assume the whole physical memory
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            avail = 8 * 2**30
    return int(avail)


def limit_in_force() -> str:
    """What bounds :func:`available_bytes`: ``MemAvailable`` or the control group's limit (its file and value)."""
    avail = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            avail = int(line.split()[1]) * 1024
            break
    for limit_path, used_path in _CGROUP_LIMITS:
        text = (_read(limit_path) or "").strip()
        if not text:
            continue
        if text != "max":
            try:
                limit, used = int(text), int((_read(used_path) or "0").strip() or 0)
            except ValueError:
                break
            if avail is None or limit - used < avail:
                return f"cgroup limit {limit_path} = {format_bytes(limit)}, {format_bytes(used)} in use"
        break
    return "MemAvailable" if avail is not None else "physical memory"


def budget_bytes() -> int:
    """Bytes a run may plan to use: :data:`MEMORY_FRACTION` of :func:`available_bytes`."""
    return int(MEMORY_FRACTION * available_bytes())


def format_bytes(n: float) -> str:
    """``1.5 GiB``, ``12 MiB`` or ``300 B`` (three significant digits)."""
    if n >= 2**30:
        return f"{n / 2**30:.3g} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.3g} MiB"
    if n >= 2**10:
        return f"{n / 2**10:.3g} KiB"
    return f"{n:.0f} B"


def memory_shortfall(need: float, detail: str) -> str | None:
    """The refusal text when ``need`` bytes exceed the budget, else None.

    Parameters
    ----------
    need : float
        Estimated peak bytes of the run.
    detail : str
        What the estimate is made of, e.g. ``"synapses 2.1e10 x 4 B"``.
    """
    have = available_bytes()
    _last_estimate[:] = [float(need), detail]
    if need <= MEMORY_FRACTION * have:
        return None
    return (
        f"run would need {format_bytes(need)} ({detail}), this machine has {format_bytes(have)} available "
        f"({limit_in_force()}; a run may plan to use {MEMORY_FRACTION:.0%} of it)"
    )


#: [bytes, detail] of the last estimate checked in this process (for ``neurodyn validate``)
_last_estimate: list = []


def last_estimate() -> str | None:
    """One line on the last memory estimate checked in this process, with the budget it was checked against.

    ``neurodyn validate`` prints it: ``memory: about 4.1 GiB at the peak (...); a run may use 18 GiB (80% of
    the 22.5 GiB available: MemAvailable)``. None when no estimate was checked.
    """
    if not _last_estimate:
        return None
    need, detail = _last_estimate
    have = available_bytes()
    return (
        f"memory: about {format_bytes(need)} at the peak ({detail}); a run may use "
        f"{format_bytes(MEMORY_FRACTION * have)} ({MEMORY_FRACTION:.0%} of the {format_bytes(have)} available: "
        f"{limit_in_force()})"
    )


def require_memory(need: float, detail: str, what: str = "", hint: str = "") -> None:
    """Raise :class:`~neurodyn.errors.ResourceError` when ``need`` bytes do not fit (see :func:`memory_shortfall`).

    Parameters
    ----------
    need : float
        Estimated peak bytes of the run.
    detail : str
        What the estimate is made of.
    what : str, optional
        A prefix naming what is too large (``"network too large"``, a field path).
    hint : str, optional
        What to change, appended after a semicolon.
    """
    text = memory_shortfall(need, detail)
    if text is not None:
        raise ResourceError((f"{what}: " if what else "") + text + (f"; {hint}" if hint else ""))
