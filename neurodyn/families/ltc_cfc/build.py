"""What an ``ltc_cfc`` run builds once: random LTC networks with their Theorem 1-2 boxes, input sequences, and
CfC cells, each drawn from its own seeded stream; the checks that refuse a run before anything is drawn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from neurodyn.errors import ScenarioError
from neurodyn.families.base import Built
from neurodyn.families.ltc_cfc import kernels as K
from neurodyn.families.ltc_cfc.params import Inputs, LTCParams, Network
from neurodyn.resources import require_memory

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.scenario import Scenario

#: stream tags: every random object has its own stream, spawned from the run's seed
TAG_NET, TAG_INPUT, TAG_CELL, TAG_DATA, TAG_TRAIN = 1, 2, 3, 4, 5


def stream(seed: int, *tags: int) -> np.random.Generator:
    """The generator of one random object, independent of every other (``SeedSequence([seed, *tags])``)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *tags]))


@dataclass
class Problem:
    """One LTC network with its box, its initial state and its input sequence."""

    net: K.Net
    bounds: K.Bounds
    x0: np.ndarray
    inputs: np.ndarray  #: (T, M)
    elapsed: np.ndarray  #: (T,)


@dataclass
class LTCBuilt(Built):
    """An ``ltc_cfc`` run, built: the problems of its experiment keyed by (head, index)."""

    problems: dict[tuple[str, int], Problem] = field(default_factory=dict)

    @property
    def params(self) -> LTCParams:
        """The scenario's validated parameters."""
        return self.scenario.params


def draw_network(spec: Network, head: str, rng: np.random.Generator) -> tuple[K.Net, K.Bounds]:
    """A random LTC network of ``spec`` with ``head``, and Theorems 1-2's box of every neuron.

    The box: the state stays in ``[min(vl_i, E_.i), max(vl_i, E_.i)]`` (Theorem 2; ``[min(0, A_i),
    max(0, A_i)]`` in Eq. 1) and ``1/tau_sys,i = (gl_i + g_i)/cm_i`` in ``[gl_i/cm_i, (gl_i + W_i)/cm_i]``
    (Theorem 1), ``W_i`` the sum of neuron ``i``'s incoming weights; for the tanh head ``W_i = 1``, the
    supremum of tanh (the theorems do not apply there: f takes negative values).
    """
    N, M = spec.neurons, spec.inputs

    def u(rng_range: tuple[float, float], shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(rng_range[0], rng_range[1], size=shape)

    if spec.form == "eq1":
        tau = u(spec.tau, (N,))
        cm, gl, vl = np.ones(N), 1.0 / tau, np.zeros(N)
        A = u(spec.reversal, (N,))
        E, Es = np.tile(A, (N, 1)), np.tile(A, (M, 1))
    else:  # ncps LTCCell initial ranges
        gl = rng.uniform(0.001, 1.0, N)
        vl = rng.uniform(-0.2, 0.2, N)
        cm = rng.uniform(0.4, 0.6, N)
        E = rng.choice(np.array([-1.0, 1.0]), size=(N, N))
        Es = rng.choice(np.array([-1.0, 1.0]), size=(M, N))
        A = np.zeros(N)
    if head == "sigmoid":
        W, Ws = u(spec.weight, (N, N)), u(spec.weight, (M, N))
        sig, sigs = u(spec.slope, (N, N)), u(spec.slope, (M, N))
        mu, mus = u(spec.centre, (N, N)), u(spec.centre, (M, N))
        if spec.wiring == "ncp":
            rec, sen = ncp_wiring(N, M, spec.motor, spec.sparsity, rng)
            W, Ws = W * (rec != 0), Ws * (sen != 0)
            if spec.form == "conductance":
                E, Es = np.where(rec != 0, rec, E), np.where(sen != 0, sen, Es)
        w_max = (W.sum(axis=0) + Ws.sum(axis=0)) / cm
        # Theorem 2's box: the hull of vl and the reversals of the synapses present
        lo = np.minimum(
            vl, np.minimum(np.where(W > 0, E, np.inf).min(axis=0), np.where(Ws > 0, Es, np.inf).min(axis=0))
        )
        hi = np.maximum(
            vl, np.maximum(np.where(W > 0, E, -np.inf).max(axis=0), np.where(Ws > 0, Es, -np.inf).max(axis=0))
        )
    else:
        if spec.form != "eq1" or spec.wiring != "full":
            raise ScenarioError(
                "network.form", spec.form, "the tanh head is the paper's Eq. 1 example; use form: eq1, wiring: full"
            )
        W, Ws = rng.normal(0.0, spec.tanh_gain, (N, N)), rng.normal(0.0, spec.tanh_gain, (M, N))
        sig = mu = np.zeros((N, N))
        sigs = mus = np.zeros((M, N))
        w_max = 1.0 / cm
        lo, hi = np.minimum(0.0, A), np.maximum(0.0, A)
    net = K.Net(cm, gl, vl, W, sig, mu, E, Ws, sigs, mus, Es, A, np.zeros(N), K.HEAD_CODES[head])
    return net, K.Bounds(lo, hi, gl / cm, gl / cm + w_max)


def ncp_wiring(N: int, M: int, motor: int, sparsity: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The four-layer NCP wiring of ``ncps``'s ``AutoNCP``: polarities (+-1, 0 for no synapse) ``(N, N)`` and
    ``(M, N)``: a reconstruction of AutoNCP's layer rules (neuron order: motor, command, inter; our random draws).

    Layer sizes: command = max(floor(0.4 (N - motor)), 1), inter = the rest; with density d = 1 - sparsity,
    every input reaches max(floor(inter d), 1) inter neurons, every inter neuron max(floor(command d), 1)
    command neurons, every motor neuron receives max(floor(command d), 1) command neurons, and
    max(floor(2 command d), 1) recurrent command synapses are drawn. Targets are drawn without replacement;
    a neuron left without input (or a command neuron without output) is patched in with one synapse.
    """
    d = 1.0 - sparsity
    command = max(int(0.4 * (N - motor)), 1)
    inter = N - motor - command
    mot = np.arange(motor)
    cmd = np.arange(motor, motor + command)
    itr = np.arange(motor + command, N)
    rec = np.zeros((N, N))
    sen = np.zeros((M, N))

    def pol() -> float:
        return float(rng.choice(np.array([-1.0, 1.0])))

    for k in range(M):
        for i in rng.choice(itr, size=min(max(int(inter * d), 1), inter), replace=False):
            sen[k, i] = pol()
    for i in itr:
        if not sen[:, i].any():
            sen[rng.integers(M), i] = pol()
    for j in itr:
        for i in rng.choice(cmd, size=min(max(int(command * d), 1), command), replace=False):
            rec[j, i] = pol()
    for i in cmd:
        if not rec[itr, i].any():
            rec[rng.choice(itr), i] = pol()
    for _ in range(max(int(2 * command * d), 1)):
        rec[rng.choice(cmd), rng.choice(cmd)] = pol()
    for i in mot:
        for j in rng.choice(cmd, size=min(max(int(command * d), 1), command), replace=False):
            rec[j, i] = pol()
    for j in cmd:
        if not rec[j, mot].any():
            rec[j, rng.choice(mot)] = pol()
    return rec, sen


def draw_inputs(spec: Inputs, M: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An input sequence ``(T, M)`` uniform in ``[-amplitude, amplitude]`` and its holding times ``(T,)``."""
    inputs = rng.uniform(-spec.amplitude, spec.amplitude, size=(spec.samples, M))
    elapsed = spec.period * rng.uniform(1.0 - spec.jitter, 1.0 + spec.jitter, size=spec.samples)
    return inputs, elapsed


def draw_problem(spec: Network, inputs: Inputs, head: str, seed: int, index: int) -> Problem:
    """Network ``index`` of ``head`` with its box, an initial state drawn inside the box, and its inputs."""
    h = K.HEAD_CODES[head]
    rng = stream(seed, TAG_NET, h, index)
    net, bounds = draw_network(spec, head, rng)
    x0 = rng.uniform(bounds.lo, bounds.hi)
    seq, elapsed = draw_inputs(inputs, spec.inputs, stream(seed, TAG_INPUT, h, index))
    return Problem(net, bounds, x0, seq, elapsed)


def check(scenario: Scenario) -> None:
    """Refuse what the run would refuse: the tanh head outside Eq. 1, sizes that do not fit in memory."""
    p: LTCParams = scenario.params
    if p.experiment == "bounds":
        b = p.bounds
        if "tanh" in b.heads and (b.network.form != "eq1" or b.network.wiring != "full"):
            raise ScenarioError(
                "params.bounds.heads",
                b.heads,
                "the tanh head is the paper's Eq. 1 example with dense gains: it needs form: eq1 and wiring: full; "
                "drop tanh for the conductance form or the NCP wiring",
            )
        n, m, t = b.network.neurons, b.network.inputs, b.inputs.samples
        require_memory(
            8.0 * (6 * n * n + 6 * m * n + 2 * t * (n + m)) * b.networks * len(b.heads),
            f"{b.networks} networks x {len(b.heads)} heads of {n} neurons, {t} samples",
            what="params.bounds.network.neurons, params.bounds.inputs.samples",
            hint="reduce neurons, samples or networks",
        )
    elif p.experiment == "xor":
        x = p.xor
        n_seq = x.train + x.test
        n = max(x.hidden, x.ltc_hidden)
        require_memory(
            8.0 * (3 * n_seq * x.pad + 2 * x.pad * x.unfolds * n + 8 * n * max(n, x.backbone)),
            f"{n_seq} sequences of {x.pad} events, the models' parameters and states",
            what="params.xor.train, params.xor.test, params.xor.pad",
            hint="reduce the number of sequences or pad",
        )
    elif p.experiment == "speed":
        s = p.speed
        n, m, t = s.network.neurons, s.network.inputs, s.inputs.samples
        require_memory(
            8.0 * (6 * n * n + 6 * m * n + 4 * t * (n + m) + (m + n) * s.backbone + 4 * s.backbone * n),
            f"a network of {n} neurons, {t} samples, a CfC backbone of {s.backbone}",
            what="params.speed",
            hint="reduce neurons, samples or backbone",
        )


def build(scenario: Scenario) -> LTCBuilt:
    """Draw the experiment's networks and inputs once (the closed-form experiment needs none)."""
    p: LTCParams = scenario.params
    seed = int(scenario.run.seed)
    built = LTCBuilt(scenario)
    if p.experiment == "bounds":
        b = p.bounds
        for head in b.heads:
            for i in range(b.networks):
                built.problems[(head, i)] = draw_problem(b.network, b.inputs, head, seed, i)
    elif p.experiment == "xor":
        x = p.xor
        n_seq = x.train + x.test
        n = max(x.hidden, x.ltc_hidden)
        require_memory(
            8.0 * (3 * n_seq * x.pad + 2 * x.pad * x.unfolds * n + 8 * n * max(n, x.backbone)),
            f"{n_seq} sequences of {x.pad} events, the models' parameters and states",
            what="params.xor.train, params.xor.test, params.xor.pad",
            hint="reduce the number of sequences or pad",
        )
    elif p.experiment == "speed":
        s = p.speed
        built.problems[("sigmoid", 0)] = draw_problem(s.network, s.inputs, "sigmoid", seed, 0)
    return built
