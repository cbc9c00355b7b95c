"""Network layout, Glorot-uniform initialisation and packing of the parameters for the kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """Row offsets of the layers in a state array and of the weight matrices in the flat vector.

    Attributes
    ----------
    layers : tuple of int
        Units per layer, input first.
    off : ndarray of int64
        Layer ``k`` is rows ``off[k]:off[k+1]``.
    woff : ndarray of int64
        ``W_k`` (shape ``(layers[k], layers[k+1])``) is ``Wf[woff[k]:woff[k+1]]``.
    """

    layers: tuple[int, ...]
    off: np.ndarray
    woff: np.ndarray

    @property
    def n_units(self) -> int:
        """Total number of units, input included."""
        return int(self.off[-1])

    @property
    def n_weights(self) -> int:
        """Total number of weights."""
        return int(self.woff[-1])

    def weights(self, Wf: np.ndarray) -> list[np.ndarray]:
        """The weight matrices as a list of 2-D views of ``Wf``."""
        return [
            Wf[self.woff[k] : self.woff[k + 1]].reshape(self.layers[k], self.layers[k + 1])
            for k in range(len(self.layers) - 1)
        ]

    def biases(self, bf: np.ndarray) -> list[np.ndarray]:
        """The bias vector of every non-input layer (views of ``bf``)."""
        return [bf[self.off[k] : self.off[k + 1]] for k in range(1, len(self.layers))]


def make_layout(layers: list[int] | tuple[int, ...]) -> Layout:
    """Offsets for the given layer sizes."""
    sizes = np.asarray(layers, dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    wsz = sizes[:-1] * sizes[1:]
    woff = np.concatenate([[0], np.cumsum(wsz)]).astype(np.int64)
    return Layout(tuple(int(x) for x in layers), off, woff)


def glorot_uniform(layout: Layout, rng: np.random.Generator, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Glorot-uniform weights ``U(-a, a)``, ``a = gain sqrt(6 / (fan_in + fan_out))``; zero biases.

    Returns
    -------
    (ndarray, ndarray)
        The flat weight vector and the per-unit bias vector (length ``layout.n_units``).
    """
    Wf = np.empty(layout.n_weights)
    for k, W in enumerate(layout.weights(Wf)):
        a = gain * np.sqrt(6.0 / (layout.layers[k] + layout.layers[k + 1]))
        W[:] = rng.uniform(-a, a, size=W.shape)
    return Wf, np.zeros(layout.n_units)


def per_unit_bias_rates(layout: Layout, lr_w: list[float]) -> np.ndarray:
    """Bias learning rate of every unit: a layer's bias uses the rate of the weight matrix feeding it."""
    lr_b = np.zeros(layout.n_units)
    for k in range(1, len(layout.layers)):
        lr_b[layout.off[k] : layout.off[k + 1]] = lr_w[k - 1]
    return lr_b
