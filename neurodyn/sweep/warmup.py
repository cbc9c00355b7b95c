"""One-off start-up work of a sweep worker, done once in the pool's fork server before any worker forks.

Importing this module runs :func:`warm_up`. The process pool (:mod:`neurodyn.sweep.executors`) lists it
in the fork server's preload, so every worker forks with the work already done, instead of each worker paying
it on its first point. Measured on the sweep benchmark's first point: 0.73 s without, 0.05 s with
(later points: 0.03 s). The fork server starts when the command line does, so the 0.5 s it takes here
overlaps the driver's own start-up on the other core.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def _one(x: float) -> float:  # pragma: no cover - compiled
    return x + 1.0


def warm_up() -> None:
    """Pay the first-use costs of Numba and xarray in this process.

    * Numba's first dispatch in a process builds its typing and target contexts (about 0.3 s), even
      when the kernel itself loads from the on-disk cache: calling one tiny cached kernel does it.
    * xarray's first Variable looks for duck-array libraries (:func:`neurodyn.sweep.executors.warm_up_xarray`;
      with :mod:`neurodyn.storage` imported first it no longer imports ``dask.array``).

    Nothing here starts a thread, so forking afterwards is safe (an OpenMP pool started before a fork
    would not be).
    """
    import gc

    from neurodyn.sweep.executors import warm_up_xarray

    _one(1.0)
    warm_up_xarray()
    # What is loaded now lives as long as the server: keep it out of every worker's garbage collections
    # (and its pages shared with the workers), as the gc module's documentation advises before a fork.
    gc.freeze()


try:
    warm_up()
except Exception:  # noqa: BLE001 - a warm-up that fails only costs the workers their start-up time
    pass
