"""Python side of the network: parameter layout, initialisation, and a batch loss/gradient call."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neurodyn.families.ultralif_network.kernels import batch_forward_backward
from neurodyn.families.ultralif_network.names import KIND_CODES, SURROGATE_CODES

ULTRA_KINDS = ("ultralif", "ultradlif", "ultraplif", "ultradplif")
#: kinds whose tau0 = sigmoid(tau_param) is learned (the "P" variants)
LEARN_TAU_KINDS = ("ultraplif", "ultradplif")


@dataclass
class NetSpec:
    """Architecture and fixed neuron constants of one network.

    Parameters
    ----------
    sizes : list of int
        ``[n_in, hidden_1, ..., hidden_L, n_out]``.
    kind : str
        Neuron kind (a key of :data:`KIND_CODES`).
    surrogate : str
        ``sigmoid`` or ``atan`` (used by ``lif`` and ``maxplus_lif`` only).
    surrogate_k : float
        Sharpness of the surrogate (10 for sigmoid as in the paper, alpha = 2 for ATan).
    theta, v_reset : float
        Threshold and reset value.
    eps_lo, eps_hi : float
        Clamp range of eps = exp(log_eps).
    smooth : bool
        Surrogate kinds only: forward spike = surrogate primitive (used by the gradient check).
    """

    sizes: list[int]
    kind: str
    surrogate: str = "sigmoid"
    surrogate_k: float = 10.0
    theta: float = 0.5
    v_reset: float = 0.0
    eps_lo: float = 0.1
    eps_hi: float = 20.0
    smooth: bool = False
    offs: np.ndarray = field(init=False)
    n_params: int = field(init=False)

    def __post_init__(self) -> None:
        L = len(self.sizes) - 2
        offs = np.full((L + 1, 4), -1, dtype=np.int64)
        k = 0
        for l in range(L):
            n_in, n = self.sizes[l], self.sizes[l + 1]
            offs[l] = (k, k + n * n_in, k + n * n_in + n, k + n * n_in + n + 1)
            k += n * n_in + n + 2
        offs[L, 0] = k
        offs[L, 1] = k + self.sizes[-1] * self.sizes[-2]
        self.n_params = int(offs[L, 1] + self.sizes[-1])
        self.offs = offs

    @property
    def n_hidden_layers(self) -> int:
        """Number of hidden (spiking) layers L."""
        return len(self.sizes) - 2

    def init(self, rng: np.random.Generator, eps0: float, tau0: float) -> np.ndarray:
        """Flat parameter vector: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
        ``nn.Linear`` default), ``log_eps = log eps0``, ``tau_param = logit(tau0)``."""
        p = np.empty(self.n_params)
        L = self.n_hidden_layers
        for l in range(L + 1):
            n_in, n = self.sizes[l], self.sizes[l + 1]
            bound = 1.0 / math.sqrt(n_in)
            w0, b0 = self.offs[l, 0], self.offs[l, 1]
            p[w0 : w0 + n * n_in] = rng.uniform(-bound, bound, n * n_in)
            p[b0 : b0 + n] = rng.uniform(-bound, bound, n)
            if l < L:
                p[self.offs[l, 2]] = math.log(eps0)
                p[self.offs[l, 3]] = math.log(tau0 / (1.0 - tau0))
        return p

    def train_mask(self, learn_eps: bool) -> np.ndarray:
        """1 for parameters the optimiser updates: eps only for Ultra kinds, tau only for P kinds."""
        mask = np.ones(self.n_params, dtype=np.int8)
        for l in range(self.n_hidden_layers):
            if not (learn_eps and self.kind in ULTRA_KINDS):
                mask[self.offs[l, 2]] = 0
            if self.kind not in LEARN_TAU_KINDS:
                mask[self.offs[l, 3]] = 0
        return mask

    def log_eps_index(self) -> np.ndarray:
        """Positions of the log_eps entries."""
        return self.offs[:-1, 2].copy()

    def tau_index(self) -> np.ndarray:
        """Positions of the tau_param entries."""
        return self.offs[:-1, 3].copy()


class Workspace:
    """Preallocated per-sample buffers of :func:`batch_forward_backward` for batches up to ``B``."""

    def __init__(self, spec: NetSpec, B: int, T: int):
        L = spec.n_hidden_layers
        H = max(spec.sizes[1:-1])
        shape = (B, L, T, H)
        self.VOLD = np.zeros(shape)
        self.CUR = np.zeros(shape)
        self.PRE = np.zeros(shape)
        self.S = np.zeros(shape)
        self.DS = np.zeros(shape)
        self.AUX = np.zeros((B, L, T, 4, H))
        self.logits = np.zeros((B, spec.sizes[-1]))
        self.loss = np.zeros(B)
        self.ce = np.zeros(B)
        self.G = np.zeros(spec.n_params)
        self.B, self.T = B, T


def loss_and_grad(
    spec: NetSpec,
    params: np.ndarray,
    X: np.ndarray,
    labels: np.ndarray,
    lam: float = 0.0,
    need_grad: bool = True,
    ws: Workspace | None = None,
) -> tuple[float, np.ndarray, Workspace]:
    """Mean loss over the batch and its exact gradient (surrogate gradient for lif/maxplus_lif).

    Parameters
    ----------
    spec : NetSpec
    params : (n_params,) float64
    X : (B, T, n_in) float64
    labels : (B,) integer
    lam : float
        Sparsity weight lambda.
    need_grad : bool
        Skip the backward pass when False (the gradient returned is then zeros).
    ws : Workspace, optional
        Reused buffers (allocated when missing or too small).

    Returns
    -------
    (float, ndarray, Workspace)
        Mean loss, mean gradient, and the workspace holding per-sample logits, spikes etc.
    """
    B, T, _ = X.shape
    if ws is None or ws.B < B or ws.T != T:
        ws = Workspace(spec, B, T)
    sl = slice(0, B)
    batch_forward_backward(
        params,
        spec.offs,
        np.asarray(spec.sizes, dtype=np.int64),
        KIND_CODES[spec.kind],
        SURROGATE_CODES[spec.surrogate],
        float(spec.surrogate_k),
        int(spec.smooth),
        float(spec.theta),
        float(spec.v_reset),
        float(spec.eps_lo),
        float(spec.eps_hi),
        float(lam),
        np.ascontiguousarray(X, dtype=np.float64),
        np.asarray(labels, dtype=np.int64),
        bool(need_grad),
        ws.VOLD[sl],
        ws.CUR[sl],
        ws.PRE[sl],
        ws.S[sl],
        ws.AUX[sl],
        ws.DS[sl],
        ws.logits[sl],
        ws.loss[sl],
        ws.ce[sl],
        ws.G,
    )
    grad = ws.G / B if need_grad else np.zeros(spec.n_params)
    return float(ws.loss[:B].mean()), grad, ws
