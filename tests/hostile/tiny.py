"""Every shipped scenario made tiny: the overrides that make an unmutated run take well under a second.

A hostile mutation may enlarge a run again (that is the point: an enlarged run must be refused by the
family's estimate, not crash), but the unmutated case must cost next to nothing. Overrides are dotted
paths set on the scenario document as written (``params`` merge over a ``model:`` preset; a list
replaces the preset's list). Sweeps keep two values per swept path.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

_LIF_RUN = {"run.duration": "20 ms", "record.analysis_start": "5 ms"}
_FIELD_LATTICE = {
    "params.lattice": {"nx": 8, "ny": 8, "h": "1 mm"},
    "params.analysis.dispersion_modes": [[1, 0], [2, 1]],
}
_TRAIN_EQPROP = {
    "params.layers": [64, 8, 10],
    "params.training.epochs": 1,
    "params.training.seeds": [1],
    "params.training.n_free": 3,
    "params.training.n_nudged": 2,
    "params.training.batch_size": 200,
    "params.training.backprop": False,
}
_ULTRALIF = {"params.seeds": [1], "params.hidden": [8], "params.epochs": 1, "params.batch_size": 256}

_CURL_FLOW = {"params.seeds": 1, "params.inputs": 3, "params.hidden": 4, "params.flow.duration": 4.0}

#: scenario stem -> dotted overrides (applied in order)
TINY: dict[str, dict[str, Any]] = {
    "curl_chain": {"params.chain.r2": [1.0, 4.0], "params.flow.duration": 20.0, "params.flow.samples": 200},
    "curl_chaos": {**_CURL_FLOW, "params.chaos.alpha": [0.0, 0.5], "params.flow.samples": 40},
    "curl_saddle_escape": {
        "params.inputs": 8,
        "params.hidden": 3,
        "params.seeds": 1,
        "params.training.samples": [20],
        "params.training.test_samples": 10,
        "params.training.epochs": 5,
    },
    "curl_stability": {
        **_CURL_FLOW,
        "params.stability.alpha": [0.0, 0.5],
        "params.stability.boundary_inputs": 20,
        "params.stability.boundary_c": [0.5, 2.0],
        "params.stability.boundary_seeds": 2,
    },
    "brunel": {
        **_LIF_RUN,
        "params.populations.exc.size": 40,
        "params.populations.inh.size": 10,
        "params.synapses": [
            {
                "source": "exc",
                "target": ["exc", "inh"],
                "connect": {"in_degree": 4},
                "kind": "current",
                "weight": "4 mV",
                "tau": "0.5 ms",
                "delay": "1.5 ms",
            },
            {
                "source": "inh",
                "target": ["exc", "inh"],
                "connect": {"in_degree": 1},
                "kind": "current",
                "weight": "-20 mV",
                "tau": "0.5 ms",
                "delay": "1.5 ms",
            },
        ],
        "record.v.indices": [0, 1, 45],
    },
    "coba": {**_LIF_RUN, "params.populations.exc.size": 40, "params.populations.inh.size": 10},
    "cuba": {**_LIF_RUN, "params.populations.exc.size": 40, "params.populations.inh.size": 10},
    "lif_coba_theory": {
        **_LIF_RUN,
        "params.populations.driven.size": 20,
        "sweep.grid": {"params.inputs.0.rate": ["11.5 Hz", "13 Hz"], "run.seed": [1]},
    },
    "lif_siegert_sweep": {
        **_LIF_RUN,
        "params.populations.noisy.size": 20,
        "sweep.grid": {"params.inputs.0.mu": ["12 mV", "15 mV"], "run.seed": [1]},
    },
    "quickstart": {
        **_LIF_RUN,
        "params.populations.regular.size": 5,
        "params.populations.noisy.size": 20,
        "params.populations.poisson.size": 20,
        "params.inputs.2.n_sources": 20,
        "record.v.indices": [0, 5, 30],
    },
    "field_convergence": {
        "params.continuum.size": ["8 mm", "8 mm"],
        "params.continuum.h": ["2 mm", "1 mm"],
        "run.duration": "2 ms",
    },
    "field_dispersion": {**_FIELD_LATTICE, "run.duration": "20 ms"},
    "field_ei_layers": {**_FIELD_LATTICE, "run.duration": "20 ms"},
    "field_invariance": {**_FIELD_LATTICE, "run.duration": "20 ms"},
    "field_massless_pulse": {
        "params.continuum.size": ["40 mm", "40 mm"],
        "params.sponge.width": 2,
        "params.analysis.pulse_radii": ["4 mm", "8 mm"],
        "run.duration": "12 ms",
        "record.snapshots.every": "1 ms",
    },
    "field_noise_spectrum": {
        "params.lattice": {"nx": 8, "ny": 8, "h": "1 mm"},
        "params.analysis": {"variance_modes": [[1, 0], [1, 1]], "spectrum_probes": 2, "burn_in": "0.1 s", "batches": 2},
        "run.duration": "0.5 s",
    },
    "field_wave_packet": {
        "params.continuum.size": ["100 mm", "8 mm"],
        "params.initial.width": "10 mm",
        "params.initial.mode": [2, 0],
        "run.duration": "20 ms",
    },
    "sync_double_well": {
        "params.n": 6,
        "params.k": [0.0, 1.0],
        "params.trials": 2,
        "params.burn_in": "1 s",
        "run.duration": "2 s",
        "run.dt": "10 ms",
    },
    "sync_logistic": {
        "params.n": [2, 4],
        "params.k": [0.0, 1.0],
        "params.trials": 2,
        "params.burn_in": "1 s",
        "params.loss.samples": 20,
        "params.loss.test_samples": 20,
        "run.duration": "2 s",
        "run.dt": "10 ms",
    },
    "sync_ou_topologies": {
        "params.k": [0.0, 1.0],
        "params.trials": 2,
        "params.burn_in": "1 s",
        "run.duration": "2 s",
        "run.dt": "10 ms",
        "record.every": "0.1 s",
    },
    "sync_scaling_n": {
        "params.n": [2, 4],
        "params.trials": 2,
        "params.burn_in": "1 s",
        "run.duration": "2 s",
        "run.dt": "10 ms",
    },
    "eqprop_bptt_match": {"params.bptt.n_examples": 1, "params.bptt.betas": [0.1, 0.01], "params.bptt.steps": 5},
    "eqprop_gradient_theorem": {
        "params.theorem.n_examples": 1,
        "params.theorem.betas": [0.1, 0.01],
        "params.layers": [3, 2, 2],
    },
    "eqprop_digits_1h": _TRAIN_EQPROP,
    "eqprop_digits_2h": {
        **_TRAIN_EQPROP,
        "params.training.eval_steps": 5,
        "params.training.lr": [0.4, 0.1],
        "params.training.bp_lr": [0.1, 0.05],
    },
    "eqprop_digits_3h": {
        **_TRAIN_EQPROP,
        "params.training.eval_steps": 5,
        "params.training.lr": [0.128, 0.032],
        "params.training.bp_lr": [0.1, 0.05],
    },
    "eqprop_symmetric_vs_standard": _TRAIN_EQPROP,
    "ultradlif_events": {
        **_ULTRALIF,
        "params.kinds": ["ultradlif"],
        "params.T": 4,
        "params.events.n_train": 40,
        "params.events.n_test": 20,
    },
    "ultralif_bounds": {
        "params.bounds.eps": [1.0, 0.1],
        "params.bounds.steps": 5,
        "params.bounds.n_neurons": 5,
        "params.bounds.n_samples": 20,
    },
    "ultralif_digits_T1": {**_ULTRALIF, "params.kinds": ["ultralif", "lif"], "params.surrogates": ["sigmoid"]},
    "ultralif_digits_T10": {
        **_ULTRALIF,
        "params.kinds": ["ultradlif"],
        "params.surrogates": ["sigmoid"],
        "params.T": 2,
    },
    "ltc_bounds": {
        "params.bounds.network.neurons": 3,
        "params.bounds.inputs.samples": 5,
        "params.bounds.networks": 1,
        "params.bounds.unfolds": [1, 6],
    },
    "cfc_speed": {
        "params.speed.network.neurons": 3,
        "params.speed.inputs.samples": 5,
        "params.speed.unfolds": [1, 2],
        "params.speed.rtols": [1.0e-3],
        "params.speed.backbone": 4,
        "params.speed.repeats": 1,
    },
    "cfc_xor": {
        "params.xor.hidden": 3,
        "params.xor.ltc_hidden": 2,
        "params.xor.backbone": 3,
        "params.xor.pad": 6,
        "params.xor.unfolds": 2,
        "params.xor.train": 20,
        "params.xor.test": 10,
        "params.xor.epochs": 1,
        "params.xor.batch": 10,
    },
    "cfc_vs_ltc": {"params.closed_form.points": 21, "params.closed_form.duration": 2.0},
    "ultralif_sparsity": {**_ULTRALIF, "params.kinds": ["ultralif"], "params.sparsity": [0.0, 0.1], "params.T": 2},
}


def set_dotted(doc: dict, path: str, value: Any) -> None:
    """``doc[a][b][0] = value`` for ``"a.b.0"``, creating mappings on the way."""
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def tiny_scenario(path: Path) -> dict:
    """The scenario document of ``path`` with its :data:`TINY` overrides applied.

    A ``model:`` preset is written out under ``params`` (the merge the loader does anyway, so nothing
    changes), which puts every parameter within reach of a mutation; ``model:`` itself stays.
    """
    from neurodyn.scenario import deep_merge

    doc = yaml.safe_load(path.read_text())
    if isinstance(doc.get("model"), str):
        preset = yaml.safe_load((path.parents[1] / "models" / f"{doc['model']}.yaml").read_text())
        doc["params"] = deep_merge(preset.get("params", preset), doc.get("params") or {})
    for key, value in TINY[path.stem].items():
        set_dotted(doc, key, copy.deepcopy(value))
    return doc
