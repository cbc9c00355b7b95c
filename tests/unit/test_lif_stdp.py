"""Pair-based STDP of ``lif_network``: the kernel against a reference of the rule, part and thread invariance,
the weight recording and the refusals of bad parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from neurodyn.families.lif_network import LIFNetwork, engine, kernels
from neurodyn.progress import QUIET
from neurodyn.scenario import from_dict

#: two plastic groups (additive, multiplicative: one with a delay) and a static one, on neurons that fire
#: from their own Poisson drive and from each other
NET = """\
name: stdp_unit
family: lif_network
params:
  populations:
    pre: {size: 40, tau_m: 10 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -54 mV, t_ref: 1 ms}
    post: {size: 15, tau_m: 10 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -54 mV, t_ref: 1 ms}
  synapses:
    - {source: pre, target: post, connect: {p: 0.5}, kind: current, weight: 0.5 mV, tau: 5 ms,
       plasticity: {rule: additive, tau_plus: 20 ms, tau_minus: 25 ms, A_plus: 0.02 mV, A_minus: 0.021 mV,
                    w_max: 1 mV}}
    - {source: post, target: [pre, post], connect: {p: 0.3}, kind: current, weight: 0.2 mV, tau: 5 ms,
       delay: 1 ms,
       plasticity: {rule: multiplicative, tau_plus: 15 ms, tau_minus: 30 ms, A_plus: 0.01 mV, A_minus: 0.05 mV,
                    w_min: 0.1 mV, w_max: 0.6 mV}}
    - {source: pre, target: pre, connect: {p: 0.1}, kind: current, weight: 0.3 mV, tau: 5 ms}
  inputs:
    - {kind: poisson, target: [pre, post], rate: 40 Hz, n_sources: 200, weight: 0.9 mV, tau: 5 ms}
run: {duration: 300 ms, dt: 0.1 ms, seed: 4}
record: {spikes: true, weights: {every: 50 ms, bins: 10}}
"""


def _scenario(**changes) -> dict:
    d = yaml.safe_load(NET)
    for path, value in changes.items():
        node = d
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[keys[-1]] = value
    return d


def _reference(built, spike_step: np.ndarray, spike_index: np.ndarray) -> np.ndarray:
    """The final weights of every plastic synapse from the run's spikes, by the rule's definition."""
    dt = float(built.scenario.run.dt)
    n_steps = built.scenario.run.n_steps
    out = []
    for p in built.network.projections:
        rule = p.plasticity
        if rule is None:
            continue
        # a spike's plasticity events happen its trace delay later (those after the run never do)
        d_pre, d_post = round(rule.delay_pre / dt), round(rule.delay_post / dt)
        pre_steps = [np.sort(spike_step[spike_index == p.pre_start + i]) + d_pre for i in range(p.n_pre)]
        post_steps = [np.sort(spike_step[spike_index == p.post_start + j]) + d_post for j in range(p.n_post)]
        pre_steps = [s[s < n_steps] for s in pre_steps]
        post_steps = [s[s < n_steps] for s in post_steps]
        pre_of = np.repeat(np.arange(p.n_pre), np.diff(p.indptr))
        w_all = np.empty(p.n_synapses)
        for q in range(p.n_synapses):
            i, j = pre_of[q], int(p.indices[q])
            w = p.weight_peak
            # events in time order; at equal steps the presynaptic one first
            events = sorted([(int(s), 0) for s in pre_steps[i]] + [(int(s), 1) for s in post_steps[j]])
            for s, kind in events:
                if kind == 0:
                    x_post = sum(math.exp(-(s - t) * dt / rule.tau_minus) for t in post_steps[j] if t < s)
                    f = (w - rule.w_min) / (rule.w_max - rule.w_min) if rule.rule == "multiplicative" else 1.0
                    w = min(max(w - rule.A_minus * f * x_post, rule.w_min), rule.w_max)
                else:
                    x_pre = sum(math.exp(-(s - t) * dt / rule.tau_plus) for t in pre_steps[i] if t <= s)
                    w = min(max(w + rule.A_plus * x_pre, rule.w_min), rule.w_max)
            w_all[q] = w
        out.append(w_all)
    return np.concatenate(out)


#: trace delays on both plastic groups: a postsynaptic one only, and both (with a transmission delay too)
TRACE_DELAYS = {
    "params.synapses.0.plasticity.delay_post": "1.5 ms",
    "params.synapses.1.plasticity.delay_pre": "2 ms",
    "params.synapses.1.plasticity.delay_post": "0.5 ms",
}


@pytest.mark.parametrize("delays", [False, True], ids=["at the spike", "trace delays"])
def test_weights_follow_the_rule_and_do_not_depend_on_parts(delays: bool) -> None:
    """The serial kernel over 1, 2 and 3 parts (split rows, and rows filtered by target) gives the very same
    weights, spikes and potentials; the weights agree with the rule applied to the run's spikes (with trace
    delays: to the spikes moved by them)."""
    built = LIFNetwork().prepare(from_dict(_scenario(**(TRACE_DELAYS if delays else {}))))
    n_steps = built.scenario.run.n_steps
    results = []
    for n_parts, filtered in ((1, False), (2, False), (3, False), (3, True)):
        state, rec = engine.new_state(built), engine.new_recording(built)
        parts = engine.new_parts(built, n_parts)
        if filtered:
            parts = parts._replace(sorted_rows=np.zeros_like(parts.sorted_rows))
        state = engine.plastic_state(built, state, n_parts)
        status, m, n_spk, _ = kernels.advance(
            0, n_steps, state, built.neurons, built.synapses, built.inputs, rec, parts
        )
        assert (status, m) == (0, n_steps)
        results.append((state.syn_w.copy(), rec.spk_step[:n_spk].copy(), rec.spk_idx[:n_spk].copy(), state.v.copy()))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)
    w, steps_, idx = results[0][:3]
    assert steps_.size > 500
    w0 = np.concatenate([np.full(p.n_synapses, p.weight_peak) for p in built.network.projections if p.plasticity])
    assert (w != w0).mean() > 0.9  # nearly every synapse learned
    np.testing.assert_allclose(w, _reference(built, steps_, idx), rtol=1e-9, atol=1e-15)


def test_weight_recording() -> None:
    """record.weights: samples at 0, 50, ..., 300 ms of mean, std and histogram per plastic group, and the final
    weight of every synapse (its group, source and target named)."""
    family = LIFNetwork()
    ds = family.simulate(family.prepare(from_dict(_scenario())), QUIET)
    assert ds.weight_time.values.tolist() == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
    assert ds.plastic_projection.values.tolist() == ["pre->post", "post->pre", "post->post"]
    assert ds.weight_mean.values[0].tolist() == pytest.approx([0.5e-3, 0.2e-3, 0.2e-3])
    assert ds.weight_std.values[0].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-18)
    for g in range(3):
        final = ds.final_weight.values[ds.synapse_projection.values == g]
        assert ds.weight_hist.values[:, g].sum(axis=1).tolist() == [final.size] * 7
        assert ds.weight_mean.values[-1, g] == pytest.approx(final.mean(), rel=1e-12)
        assert ds.weight_std.values[-1, g] == pytest.approx(final.std(), rel=1e-9)
    assert ds.weight_bin_centre.values[0, 0] == pytest.approx(0.05e-3)


def test_static_network_has_no_weight_variables() -> None:
    d = _scenario()
    for syn in d["params"]["synapses"]:
        syn.pop("plasticity", None)
    d["record"].pop("weights")
    family = LIFNetwork()
    built = family.prepare(from_dict(d))
    assert built.synapses.pr_plastic.size == 0
    ds = family.simulate(built, QUIET)
    assert "final_weight" not in ds and "weight_mean" not in ds


@pytest.mark.parametrize(
    "path,value,needles",
    [
        ("params.synapses.0.plasticity.tau_plus", "-20 ms", ("tau_plus", "positive")),
        ("params.synapses.0.plasticity.tau_minus", "0 ms", ("tau_minus", "positive")),
        ("params.synapses.0.plasticity.w_min", "2 mV", ("w_min", "below w_max")),
        ("params.synapses.0.plasticity.A_minus", "-1 mV", ("A_minus", ">= 0")),
        ("params.synapses.0.plasticity.A_plus", "1 nS", ("A_plus",)),
        ("params.synapses.0.plasticity.rule", "triplet", ("rule",)),
        ("params.synapses.0.weight", "2 mV", ("weight", "[w_min, w_max]")),
        ("record.weights.every", "0 ms", ("every", "positive")),
        ("params.synapses.0.plasticity.delay", "1 ms", ("plasticity.delay", "unknown key")),
        ("params.synapses.0.plasticity.delay_pre", "-1 ms", ("delay_pre",)),
        ("params.synapses.0.plasticity.delay_post", "1 mV", ("delay_post",)),
    ],
)
def test_bad_plasticity_is_refused_in_one_line(cli, user_error, tmp_path, path, value, needles) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(NET)
    user_error(cli("validate", str(f), "--set", f"{path}={value}"), *needles)


def test_nest_backend_refuses_plasticity(cli, user_error, tmp_path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(NET)
    user_error(cli("validate", str(f), "--set", "run.backend=nest"), "params.synapses.0.plasticity", "static")


def test_weights_figure() -> None:
    """A run with record.weights gets a second figure, ``weights`` (one column per plastic group)."""
    import matplotlib

    matplotlib.use("Agg")
    from neurodyn.families.lif_network import plots

    family = LIFNetwork()
    ds = family.simulate(family.prepare(from_dict(_scenario())), QUIET)
    ds = ds.merge(family.theory(family.prepare(from_dict(_scenario())), ds))
    figs = plots.figures(ds)
    assert [f.get_label() for f in figs] == ["overview", "weights"]
    assert len(figs[1].axes) == 6
