"""The sync_learners noise streams: the ziggurat sampler's distribution, stream independence, and
bitwise reproducibility across chunkings and Numba thread counts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from neurodyn.families.sync_learners import kernels, rng

N = 2_000_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return rng.normals(2024, N)


def test_ziggurat_tables_have_equal_layer_areas():
    """Every layer (and the base strip with its tail) has the ziggurat's area v = 0.00492867323399."""
    x = rng.ZIG_W * 2.0**52  # right edges x_i
    areas = x[1:] * (rng.ZIG_F[:-1] - rng.ZIG_F[1:])
    np.testing.assert_allclose(areas, rng._ZIG_V, rtol=1e-8)
    # base strip: the rectangle under f(r) plus the tail integral of exp(-x^2/2) beyond r
    tail = np.sqrt(2 * np.pi) * stats.norm.sf(rng._ZIG_R)
    np.testing.assert_allclose(rng._ZIG_R * rng.ZIG_F[255] + tail, rng._ZIG_V, rtol=1e-8)


def test_normal_moments_within_4_standard_errors(draws):
    """Mean, variance, skewness and excess kurtosis of 2e6 draws against N(0, 1) (4 SE each)."""
    se = {"mean": 1 / np.sqrt(N), "var": np.sqrt(2 / N), "skew": np.sqrt(6 / N), "kurt": np.sqrt(24 / N)}
    assert abs(draws.mean()) < 4 * se["mean"]
    assert abs(draws.var() - 1.0) < 4 * se["var"]
    assert abs(stats.skew(draws)) < 4 * se["skew"]
    assert abs(stats.kurtosis(draws)) < 4 * se["kurt"]


def test_normal_ks_and_tails(draws):
    """KS test against the normal CDF, and the tail beyond r (only reached through the slow path)."""
    assert stats.kstest(draws, "norm").pvalue > 1e-3
    p_tail = 2 * stats.norm.sf(rng._ZIG_R)
    hits = np.count_nonzero(np.abs(draws) > rng._ZIG_R)
    assert abs(hits - N * p_tail) < 4 * np.sqrt(N * p_tail)
    # far tail: P(|x| > 4.5) = 6.8e-6, 13.6 expected; Poisson 99.9% range
    far = np.count_nonzero(np.abs(draws) > 4.5)
    assert 3 <= far <= 30
    # a wedge-dominated region: the fraction in each of 40 bins over [-4, 4] (chi-square, 39 dof)
    edges = np.linspace(-4, 4, 41)
    counts = np.histogram(draws, edges)[0]
    expect = N * np.diff(stats.norm.cdf(edges))
    chi2 = ((counts - expect) ** 2 / expect).sum()
    assert stats.chi2.sf(chi2, 39) > 1e-3


def test_streams_are_uncorrelated_and_reproducible():
    """Neighbouring streams are uncorrelated; a stream's sequence does not depend on how draws are grouped."""
    st = rng.new_streams(7, 3)
    a = np.empty(200_000)
    b = np.empty(200_000)
    bits = np.empty(rng.BATCH, dtype=np.uint64)
    rng.take_normals(st, 0, a, 0, a.size, bits)
    rng.take_normals(st, 1, b, 0, b.size, bits)
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)
    assert abs(np.corrcoef(a[1:], a[:-1])[0, 1]) < 4 / np.sqrt(a.size)
    st2 = rng.new_streams(7, 3)
    pieces = []
    pos = 0
    for size in [1, 99, 256, 1000, 3, 500]:
        out = np.empty(size)
        rng.take_normals(st2, 0, out, 0, size, bits)
        pieces.append(out)
        pos += size
    np.testing.assert_array_equal(np.concatenate(pieces), a[:pos])


_SCRIPT = """
import hashlib, numpy as np
from neurodyn.runner import simulate
from neurodyn.scenario import from_dict
h = hashlib.sha256()
for integ in ("euler_maruyama", "exact"):
    doc = {"name": "t", "family": "sync_learners",
           "params": {"n": 500, "d": 60, "k": [0.1], "sigma": 1.0, "topology": ["complete", "ring"],
                      "loss": {"kind": "quadratic", "hessian": 1.0}, "trials": 2, "integrator": integ,
                      "noise_correlation": 0.2, "burn_in": "0.01 s", "init_spread": 0.5},
           "run": {"duration": "0.05 s", "dt": "0.005 s", "seed": 3}, "record": {"every": "0.01 s"}}
    ds = simulate(from_dict(doc))
    for name in ("spread", "centroid_error", "spread_t", "trajectory"):
        h.update(np.ascontiguousarray(ds[name].values).tobytes())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_output_is_bitwise_identical_for_1_and_2_threads():
    """The same scenario with NUMBA_NUM_THREADS = 1 and 2 (parallel kernels in use) gives the same bits."""
    assert 2 * 500 * 60 >= 50_000  # large enough for the engine to run the kernels on several threads
    digests = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True
        )
        digests.append(out.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]
    assert len(digests[0]) == len(hashlib.sha256().hexdigest())


def test_block_layout_depends_on_size_only():
    """Blocks per trial: 1 for small systems, at most MAX_BLOCKS, never more than n."""
    assert kernels.n_blocks(8, 2) == 1
    assert kernels.n_blocks(1000, 100) == kernels.MAX_BLOCKS
    assert kernels.n_blocks(3, 100_000) == 3
    assert kernels.n_streams(5, 1000, 100) == 5 * kernels.MAX_BLOCKS + 5


@pytest.mark.parametrize("integrator", ["euler_maruyama", "exact"])
def test_several_blocks_same_bits_whatever_the_chunking(integrator):
    """With several learner blocks per trial (n d = 16384: 4 blocks), chunked and unchunked runs agree
    bitwise (complete graph: the block-ordered mean is recomputed identically at each chunk start)."""
    from neurodyn.runner import simulate
    from neurodyn.scenario import from_dict

    assert kernels.n_blocks(64, 256) == 4

    def run(seed: int, chunk: str | None):
        doc = {
            "name": "t",
            "family": "sync_learners",
            "params": {
                "n": 64,
                "d": 256,
                "k": [0.5],
                "sigma": 1.0,
                "topology": ["complete", "ring"],
                "trials": 1,
                "init_spread": 1.0,
                "noise_correlation": 0.2,
                "integrator": integrator,
                "burn_in": "0.05 s",
            },
            "run": {"duration": "0.2 s", "dt": "0.01 s", "seed": seed, **({"chunk": chunk} if chunk else {})},
            "record": {"every": "0.01 s"},
        }
        return simulate(from_dict(doc))

    a, b, c = run(5, "0.07 s"), run(5, None), run(6, None)
    for name in ("spread", "centroid_error", "spread_t", "trajectory"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert not np.array_equal(a["spread"].values, c["spread"].values)
