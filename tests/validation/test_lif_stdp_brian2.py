"""STDP in Brian2 (its standard ``Synapses`` with event-driven traces) against the Numba engine: the same
spikes and weights for a deterministic network, the same final weight distribution for a noisy one."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytest.importorskip("brian2")
pytestmark = [pytest.mark.brian2, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

from scipy.stats import ks_2samp  # noqa: E402

from neurodyn.families.lif_network import LIFNetwork  # noqa: E402
from neurodyn.progress import QUIET  # noqa: E402
from neurodyn.scenario import from_dict  # noqa: E402

#: constant drive, no noise: both backends integrate exactly, so the spikes are the same and so are the
#: weights (an additive group, and a multiplicative one with a delay, which carries the weight at the spike)
DETERMINISTIC = """\
name: stdp_peer
family: lif_network
params:
  populations:
    pre: {size: 30, tau_m: 10 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -54 mV, t_ref: 2 ms,
          v_init: {uniform: [-70 mV, -54 mV]}}
    post: {size: 10, tau_m: 10 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -54 mV, t_ref: 2 ms,
           v_init: {uniform: [-70 mV, -54 mV]}}
  synapses:
    - {source: pre, target: post, connect: {p: 0.5}, kind: current, weight: 0.5 mV, tau: 5 ms,
       plasticity: {rule: additive, tau_plus: 20 ms, tau_minus: 25 ms, A_plus: 0.02 mV, A_minus: 0.021 mV,
                    w_max: 1 mV}}
    - {source: post, target: pre, connect: {p: 0.3}, kind: current, weight: 0.2 mV, tau: 5 ms, delay: 1 ms,
       plasticity: {rule: multiplicative, tau_plus: 15 ms, tau_minus: 30 ms, A_plus: 0.01 mV, A_minus: 0.05 mV,
                    w_min: 0.1 mV, w_max: 0.6 mV}}
  inputs:
    - {kind: constant, target: pre, drive: 20 mV}
    - {kind: constant, target: post, drive: 18 mV}
run: {duration: 500 ms, dt: 0.1 ms, seed: 2}
record: {spikes: true, weights: {every: 100 ms}}
"""

#: Poisson-driven neurons (independent trains in each backend) with multiplicative STDP of negligible weight
NOISY = """\
name: stdp_ks
family: lif_network
params:
  populations:
    pre: {size: 100, tau_m: 10 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -54 mV, t_ref: 2 ms}
    post: {size: 50, tau_m: 10 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -54 mV, t_ref: 2 ms}
  synapses:
    - {source: pre, target: post, connect: {p: 0.4}, kind: current, weight: 0.5 uV, tau: 5 ms,
       plasticity: {rule: multiplicative, tau_plus: 20 ms, tau_minus: 20 ms, A_plus: 0.01 uV, A_minus: 0.02 uV,
                    w_min: 0 uV, w_max: 1 uV}}
  inputs:
    - {kind: poisson, target: [pre, post], rate: 25 Hz, n_sources: 100, weight: 1.4 mV, tau: 5 ms}
run: {duration: 3 s, dt: 0.1 ms, seed: 1}
record: {spikes: false, weights: {every: 500 ms}}
"""


def _run(text: str, backend: str):
    d = yaml.safe_load(text)
    d["run"]["backend"] = backend
    family = LIFNetwork()
    return family.simulate(family.prepare(from_dict(d)), QUIET)


#: the same network with trace delays: a postsynaptic one on the first group, both on the delayed second
TRACE_DELAYS = DETERMINISTIC.replace("w_max: 1 mV}", "w_max: 1 mV, delay_post: 1.5 ms}").replace(
    "w_max: 0.6 mV}", "w_max: 0.6 mV, delay_pre: 2 ms, delay_post: 0.5 ms}"
)


@pytest.mark.parametrize("text", [DETERMINISTIC, TRACE_DELAYS], ids=["at the spike", "trace delays"])
def test_deterministic_network_same_spikes_and_weights(text: str) -> None:
    """Same spikes bit for bit; every final weight and every sampled mean within 1e-15 (the weights are
    below 1e-3)."""
    a, b = _run(text, "numba"), _run(text, "brian2:numpy")
    assert a.spike_time.size > 1000
    assert np.array_equal(a.spike_time.values, b.spike_time.values)
    assert np.array_equal(a.spike_index.values, b.spike_index.values)
    np.testing.assert_allclose(a.final_weight.values, b.final_weight.values, rtol=0, atol=1e-15)
    np.testing.assert_allclose(a.weight_mean.values, b.weight_mean.values, rtol=0, atol=1e-15)
    assert (a.final_weight.values != np.repeat([0.5e-3, 0.2e-3], np.bincount(a.synapse_projection))).all()


def test_noisy_network_same_weight_distribution() -> None:
    """Independent Poisson drive in each backend: the final weights pass a two-sample KS test (p > 0.05;
    0.60 with these seeds) and their mean and spread agree within 2 % and 5 %."""
    a, b = _run(NOISY, "numba"), _run(NOISY, "brian2:numpy")
    assert ks_2samp(a.final_weight.values, b.final_weight.values).pvalue > 0.05
    assert float(a.weight_final_mean[0]) == pytest.approx(float(b.weight_final_mean[0]), rel=0.02)
    assert float(a.weight_final_std[0]) == pytest.approx(float(b.weight_final_std[0]), rel=0.05)
    assert float(a.weight_final_std[0]) > 2e-8  # the weights did spread
