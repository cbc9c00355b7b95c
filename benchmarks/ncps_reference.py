"""Forward pass of the ``ltc_cfc`` kernels against the authors' ``ncps`` package, same weights, same inputs.

Needs ``ncps`` and ``torch`` (not project dependencies); without them the script prints a note and exits 0.
For every model it copies one set of weights into ``ncps.torch.CfCCell`` / ``ncps.torch.LTCCell`` and into
the family's kernels (``kernels.cfc_sequence``, ``kernels.unfold``), feeds the same input sequence and the same
elapsed times, and prints the largest absolute difference of the states over the whole sequence, with PyTorch in
float64 (the kernels' precision: the difference is rounding only) and in float32 (ncps's default), and the wall
time per sequence of both (ncps cell stepped from Python at batch 1 under ``torch.no_grad``, one PyTorch
thread; the kernel in Numba, the LTC kernel including its per-sub-step checks of Theorems 1-2; best of
``--repeats``, same run).

Parameter mapping (ncps 1.0.1 source, ``ncps/torch/cfc_cell.py`` and ``ltc_cell.py``):

CfC (``CfCCell(M, N, mode, backbone_activation, backbone_units=B, backbone_layers=1)``)
    ``backbone[0]`` (``Linear(M + N, B)`` on ``cat([input, hx])``): weight = ``Wbb.T``, bias = ``bbb`` (the
    kernel's weights are ``(fan_in, fan_out)``, torch's ``(out, in)``; both order the input before the state);
    ``ff1, ff2, time_a, time_b``: weight = ``W1.T, W2.T, Wa.T, Wb.T``, bias = ``b1, b2, ba, bb``; ``pure``:
    ``A`` = ``A``, ``w_tau`` = ``wtau`` (ncps keeps them as ``(1, N)``). ``ts`` = the sample's elapsed time.
    The kernel's weights are drawn as ncps initialises them (Glorot uniform) but the biases are drawn too
    (ncps starts them at zero), so that every term of the update is exercised. No convention differs.

LTC (``LTCCell(FullyConnected(N), in_features=M, ode_unfolds=L, ...)``, sigmoid head, conductance form)
    ``gleak, vleak, cm`` = ``gl, vl, cm``; ``w, sigma, mu, erev`` = ``W, sig, mu, E``; ``sensory_w,
    sensory_sigma, sensory_mu, sensory_erev`` = ``Ws, sigs, mus, Es``; both index synapses ``(pre, post)``
    and sum over the presynaptic axis. ``sparsity_mask`` = ``W != 0`` (``sensory_sparsity_mask`` = ``Ws != 0``):
    with the NCP wiring an absent synapse has ``w = 0`` in the kernel and mask 0 in ncps. ``elapsed_time`` =
    the sample's elapsed time, ``ode_unfolds`` = ``L`` (both take ``Δt = elapsed / L``). Conventions that
    differ, and how they are neutralised here:

    * ncps's ``input_mapping="affine"`` (``I -> input_w I + input_b``) has no counterpart in the kernel (the
      sensory sigmoids carry their own slopes and centres, which can absorb it:
      ``σ(s (a I + b − μ)) = σ(a s (I − (μ − b)/a))``); it is left at its initial value ``w = 1, b = 0``,
      the identity.
    * ncps's ``output_mapping="affine"`` maps the first ``motor`` states to the output; the comparison is on
      the full state ``next_state``, which ncps returns beside the output.
    * ``implicit_param_constraints=False`` (ncps's default): ``cm, gleak, w, sensory_w`` are used as stored;
      with ``True`` ncps would pass them through softplus, and the kernel's value is the softplus of ncps's.
    * ncps divides by ``denominator + epsilon`` (``epsilon = 1e-8``); the kernel has no epsilon. Run with
      ``epsilon = 0`` (exact mapping) and with ncps's ``1e-8`` (printed separately): the latter shrinks each
      fused step's result by a relative ``1e-8 / (cm/Δt + gl + Σ w s)``, a shift that accumulates over the
      ``T L`` sub-steps where the state relaxes slowly.
    * The tanh head and the Eq. 1 form are not ncps models (Eq. 1 is the conductance form with ``cm = 1``,
      ``gl = 1/τ``, ``vl = 0``, so it maps too, but is not run separately); explicit Euler is not in ncps.

Run: ``python benchmarks/ncps_reference.py [--neurons 32] [--repeats 5]`` with ncps and torch importable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# This checkout's neurodyn, not whichever one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurodyn.families.ltc_cfc import kernels as K  # noqa: E402
from neurodyn.families.ltc_cfc.build import draw_problem, stream  # noqa: E402
from neurodyn.families.ltc_cfc.params import Inputs, Network  # noqa: E402
from neurodyn.families.ltc_cfc.speed import best_time, random_cell  # noqa: E402


def cfc_cell(M: int, N: int, B: int, mode: str, act: str, rng: np.random.Generator) -> K.Cell:
    """A CfC cell with ncps's Glorot-uniform weights, and nonzero biases (and Cf-S ``A``, ``w_tau``)."""
    c = random_cell(M, N, B, mode, act, rng)
    return c._replace(
        bbb=rng.uniform(-0.5, 0.5, B),
        b1=rng.uniform(-0.5, 0.5, N),
        b2=rng.uniform(-0.5, 0.5, N),
        ba=rng.uniform(-0.5, 0.5, N),
        bb=rng.uniform(-0.5, 0.5, N),
        A=rng.uniform(0.5, 1.5, N),
        wtau=rng.uniform(-1.0, 1.0, N),
    )


def ncps_cfc(torch, ncps_torch, c: K.Cell, mode: str, act: str, dtype):
    """``ncps.torch.CfCCell`` holding the kernel cell's weights."""
    M, B = c.Wbb.shape[0] - c.b1.shape[0], c.bbb.shape[0]
    N = c.b1.shape[0]
    cell = ncps_torch.CfCCell(M, N, mode=mode, backbone_activation=act, backbone_units=B, backbone_layers=1).to(dtype)
    t = lambda a: torch.tensor(np.asarray(a))  # noqa: E731
    with torch.no_grad():
        cell.backbone[0].weight.copy_(t(c.Wbb.T))
        cell.backbone[0].bias.copy_(t(c.bbb))
        cell.ff1.weight.copy_(t(c.W1.T))
        cell.ff1.bias.copy_(t(c.b1))
        if mode == "pure":
            cell.A.copy_(t(c.A[None, :]))
            cell.w_tau.copy_(t(c.wtau[None, :]))
        else:
            for lin, W, b in ((cell.ff2, c.W2, c.b2), (cell.time_a, c.Wa, c.ba), (cell.time_b, c.Wb, c.bb)):
                lin.weight.copy_(t(W.T))
                lin.bias.copy_(t(b))
    return cell.eval()


def ncps_ltc(torch, ncps_mod, net: K.Net, L: int, epsilon: float, dtype):
    """``ncps.torch.LTCCell`` holding the kernel network's parameters (see the module docstring)."""
    M, N = net.Ws.shape
    cell = ncps_mod.torch.LTCCell(ncps_mod.wirings.FullyConnected(N), in_features=M, ode_unfolds=L, epsilon=epsilon).to(
        dtype
    )
    p = cell._params
    values = {
        "gleak": net.gl,
        "vleak": net.vl,
        "cm": net.cm,
        "w": net.W,
        "sigma": net.sig,
        "mu": net.mu,
        "erev": net.E,
        "sensory_w": net.Ws,
        "sensory_sigma": net.sigs,
        "sensory_mu": net.mus,
        "sensory_erev": net.Es,
        "sparsity_mask": (net.W != 0).astype(float),
        "sensory_sparsity_mask": (net.Ws != 0).astype(float),
    }
    with torch.no_grad():
        for name, v in values.items():
            p[name].copy_(torch.tensor(np.asarray(v)))
    return cell.eval()


def run_torch(torch, cell, x0: np.ndarray, inputs: np.ndarray, elapsed: np.ndarray, dtype) -> np.ndarray:
    """Step an ncps cell over the sequence at batch 1; the (T, N) states."""
    x = torch.tensor(x0[None, :], dtype=dtype)
    inp = torch.tensor(inputs[:, None, :], dtype=dtype)
    ts = torch.tensor(elapsed[:, None, None], dtype=dtype)
    out = []
    with torch.no_grad():
        for s in range(inputs.shape[0]):
            _, x = cell(inp[s], x, ts[s])
            out.append(x)
    return torch.cat(out).double().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    try:
        import ncps
        import ncps.torch
        import ncps.wirings
        import torch
    except ImportError as e:
        print(f"ncps / PyTorch not importable ({e}): no comparison with the authors' package")
        return
    torch.set_num_threads(1)  # the Numba kernels run on one thread
    from importlib.metadata import version

    print(f"ncps {version('ncps')}, torch {torch.__version__}, numpy {np.__version__}")
    N, M, T, L, B = a.neurons, 4, 100, 6, 128
    inp_spec = Inputs(samples=T, jitter=0.5)
    rows = []

    def compare(name, kernel, make_cell, x0, inputs, elapsed):
        """Differences in float64 and float32; times of the kernel and of the prebuilt float32 ncps cell."""
        ref = kernel()
        cells = {dt: make_cell(dt) for dt in (torch.float64, torch.float32)}
        d64, d32 = (np.abs(run_torch(torch, cells[dt], x0, inputs, elapsed, dt) - ref).max() for dt in cells)
        tk = best_time(kernel, a.repeats)
        tt = best_time(lambda: run_torch(torch, cells[torch.float32], x0, inputs, elapsed, torch.float32), a.repeats)
        rows.append((name, d64, d32, np.abs(ref).max(), tk, tt))

    pr = draw_problem(Network(neurons=N, inputs=M), inp_spec, "sigmoid", 1, 0)
    for i, (mode, act) in enumerate((("default", "lecun_tanh"), ("no_gate", "lecun_tanh"), ("pure", "relu"))):
        c = cfc_cell(M, N, B, mode, act, stream(0, 3, i))
        xs = np.empty((T, N))

        def kernel(c=c, xs=xs):
            K.cfc_sequence(c, np.zeros(N), pr.inputs, pr.elapsed, xs)
            return xs.copy()

        def make_cell(dtype, c=c, mode=mode, act=act):
            return ncps_cfc(torch, ncps.torch, c, mode, act, dtype)

        compare(f"CfC {mode} ({act}, B = {B})", kernel, make_cell, np.zeros(N), pr.inputs, pr.elapsed)

    for wiring in ("full", "ncp"):
        pr = draw_problem(Network(neurons=N, inputs=M, form="conductance", wiring=wiring), inp_spec, "sigmoid", 1, 0)
        xs = np.empty((T, N))
        stats = np.zeros(len(K.STATS))
        for eps in (0.0, 1e-8):

            def kernel(pr=pr, xs=xs, stats=stats):
                K.unfold(pr.net, pr.bounds, pr.x0.copy(), pr.inputs, pr.elapsed, L, 0, 0, T, xs, stats, np.inf)
                return xs.copy()

            def make_cell(dtype, pr=pr, eps=eps):
                return ncps_ltc(torch, ncps, pr.net, L, eps, dtype)

            compare(f"LTC {wiring}, L = {L}, eps = {eps:g}", kernel, make_cell, pr.x0, pr.inputs, pr.elapsed)

    print(f"N = {N}, M = {M}, T = {T} irregular samples; max |state difference| over the sequence")
    print(f"{'model':<32} {'f64 diff':>9} {'f32 diff':>9} {'max|x|':>7} {'Numba ms':>9} {'ncps ms':>8} {'ratio':>6}")
    for name, d64, d32, mx, tk, tt in rows:
        print(f"{name:<32} {d64:>9.1e} {d32:>9.1e} {mx:>7.3f} {tk * 1e3:>9.3f} {tt * 1e3:>8.2f} {tt / tk:>6.0f}")
    print("ratio = ncps (float32, PyTorch, 1 thread) / Numba kernel, wall time per sequence")


if __name__ == "__main__":
    main()
