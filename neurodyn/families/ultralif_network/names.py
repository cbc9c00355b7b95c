"""Names shared by the schema and the kernels, importable without compiling anything."""

from __future__ import annotations

#: neuron kind -> integer code passed to the kernels
KIND_CODES: dict[str, int] = {
    "lif": 0,
    "maxplus_lif": 1,
    "ultralif": 2,
    "ultradlif": 3,
    "ultraplif": 4,
    "ultradplif": 5,
}
#: surrogate gradient -> integer code
SURROGATE_CODES: dict[str, int] = {"sigmoid": 0, "atan": 1}
#: kinds with a hard threshold, trained with a surrogate gradient
SURROGATE_KINDS = ("lif", "maxplus_lif")
