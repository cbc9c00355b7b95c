"""The ``ltc_cfc`` kernels against an independent NumPy implementation of the papers' equations, for identical
weights and inputs: the LTC fused step (LTC Eq. 3) and explicit Euler in Eq. 1 and in the conductance form of
``ncps.LTCCell``, the right-hand side against the adaptive solution's order of error, and the CfC cell
(CfC Eq. 10 as ``ncps.CfCCell``) in its three modes."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.families.ltc_cfc import kernels as K
from neurodyn.families.ltc_cfc.build import draw_problem
from neurodyn.families.ltc_cfc.params import Inputs, Network
from neurodyn.families.ltc_cfc.solvers import adaptive, unfolded


def sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def numpy_ltc(net: K.Net, x0, inputs, elapsed, L, scheme):
    """The LTC network written from the equations (vectorised NumPy, no shared code with the kernels)."""
    x = x0.copy()
    out = []
    for inp, span in zip(inputs, elapsed):
        dt = span / L
        for _ in range(L):
            if net.head == 0:
                s = net.W * sigmoid(net.sig * (x[:, None] - net.mu))  # (pre, post)
                ss = net.Ws * sigmoid(net.sigs * (inp[:, None] - net.mus))
                g = s.sum(0) + ss.sum(0)
                d = (s * net.E).sum(0) + (ss * net.Es).sum(0)
            else:
                f = np.tanh(x @ net.W + inp @ net.Ws + net.bias)
                g, d = f, f * net.A
            if scheme == "fused":
                # ncps LTCCell._ode_solver: numerator / denominator with cm_t = cm / dt
                cm_t = net.cm / dt
                x = (cm_t * x + net.gl * net.vl + d) / (cm_t + net.gl + g)
            else:
                x = x + dt * (net.gl * (net.vl - x) + d - g * x) / net.cm
        out.append(x.copy())
    return np.array(out)


@pytest.mark.parametrize("form", ["eq1", "conductance", "ncp"])
@pytest.mark.parametrize("scheme", ["fused", "euler"])
def test_unfolded_ltc_matches_numpy(form, scheme):
    if form == "ncp":
        spec = Network(neurons=5, inputs=3, form="conductance", wiring="ncp")
    else:
        spec = Network(neurons=5, inputs=3, form=form)
    pr = draw_problem(spec, Inputs(samples=12, jitter=0.5, amplitude=2.0), "sigmoid", seed=3, index=0)
    xs, stats = unfolded(pr, 6, scheme)
    ref = numpy_ltc(pr.net, pr.x0, pr.inputs, pr.elapsed, 6, scheme)
    np.testing.assert_allclose(xs, ref, rtol=1e-12, atol=1e-13)
    assert stats[4] == 12 * 6 * 5  # every neuron checked after every sub-step


def test_tanh_head_matches_numpy():
    pr = draw_problem(Network(neurons=4, inputs=2, tanh_gain=0.5), Inputs(samples=8), "tanh", seed=1, index=0)
    xs, _ = unfolded(pr, 3, "fused")
    np.testing.assert_allclose(xs, numpy_ltc(pr.net, pr.x0, pr.inputs, pr.elapsed, 3, "fused"), rtol=1e-12)


def test_fused_solver_is_first_order_against_the_adaptive_solution():
    """The fused step's error halves when L doubles (LTC Eq. 3 is first order)."""
    pr = draw_problem(Network(neurons=6, inputs=2), Inputs(samples=10, amplitude=2.0), "sigmoid", seed=5, index=0)
    ref, _, _ = adaptive(pr, 1e-12, 1e-14)
    errors = [np.max(np.abs(unfolded(pr, L, "fused")[0] - ref)) for L in (16, 32, 64)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 1.9) & (ratios < 2.1)), ratios


def numpy_cfc(p: K.Cell, inputs, elapsed, x0):
    """CfC Eq. 10 as ncps.CfCCell computes it (NumPy, row-vector convention)."""
    x = x0.copy()
    out = []
    act = {0: lambda u: 1.7159 * np.tanh(0.666 * u), 1: lambda u: np.maximum(u, 0), 2: np.tanh}[p.act]
    for inp, t in zip(inputs, elapsed):
        z = act(np.concatenate([inp, x]) @ p.Wbb + p.bbb)
        ff1 = z @ p.W1 + p.b1
        if p.mode == 2:
            x = -p.A * np.exp(-t * (np.abs(p.wtau) + np.abs(ff1))) * ff1 + p.A
        else:
            ff2 = np.tanh(z @ p.W2 + p.b2)
            gate = sigmoid((z @ p.Wa + p.ba) * t + (z @ p.Wb + p.bb))
            x = np.tanh(ff1) * (1 - gate) + gate * ff2 if p.mode == 0 else np.tanh(ff1) + gate * ff2
        out.append(x)
    return np.array(out)


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("act", ["lecun_tanh", "relu"])
def test_cfc_cell_matches_numpy(mode, act):
    rng = np.random.default_rng(7)
    M, N, B, T = 3, 5, 7, 9

    def r(*shape):
        return rng.normal(0, 0.7, shape)

    cell = K.Cell(
        r(M + N, B),
        r(B),
        r(B, N),
        r(N),
        r(B, N),
        r(N),
        r(B, N),
        r(N),
        r(B, N),
        r(N),
        r(N),
        r(N),
        K.MODE_CODES[mode],
        K.ACT_CODES[act],
    )
    inputs, elapsed, x0 = r(T, M), rng.uniform(0.1, 2.0, T), r(N)
    xs = np.empty((T, N))
    x = x0.copy()
    K.cfc_sequence(cell, x, inputs, elapsed, xs)
    np.testing.assert_allclose(xs, numpy_cfc(cell, inputs, elapsed, x0), rtol=1e-12, atol=1e-14)


def test_numba_rk45_reaches_its_tolerance_against_the_dop853_reference():
    """The adaptive solver of the speed comparison (Dormand-Prince 5(4) in Numba) converges to the reference."""
    pr = draw_problem(Network(neurons=6, inputs=2), Inputs(samples=10, jitter=0.5, amplitude=2.0), "sigmoid", 9, 0)
    ref, _, _ = adaptive(pr, 1e-12, 1e-14)
    errors = []
    for rtol in (1e-4, 1e-7, 1e-10):
        xs = np.empty_like(ref)
        x = pr.x0.copy()
        K.rk45_sequence(pr.net, x, pr.inputs, pr.elapsed, rtol, rtol * 1e-2, xs)
        errors.append(np.max(np.abs(xs - ref)))
    assert errors[0] < 1e-3 and errors[1] < 1e-6 and errors[2] < 1e-8
    assert errors[0] > errors[1] > errors[2]
