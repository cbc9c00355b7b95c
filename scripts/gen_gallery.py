"""Regenerate ``docs/gallery.md`` and its figures (``docs/img/gallery/``) from the shipped scenarios.

Each scenario runs in memory (shortened with ``--set``-style overrides where the shipped run takes minutes)
and its figures are written by :func:`neurodyn.plot`, exactly as ``neurodyn plot`` writes them. The whole
gallery takes a few minutes on a laptop::

    MPLBACKEND=Agg python scripts/gen_gallery.py
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt

import neurodyn

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img" / "gallery"
PAGE = ROOT / "docs" / "gallery.md"

#: (scenario stem, overrides, what the figures show)
GALLERY = [
    (
        "quickstart",
        {},
        "Three unconnected LIF populations against their exact and diffusion-approximation rates.",
    ),
    (
        "cuba",
        {},
        "The CUBA benchmark network (4000 neurons, 4:1 excitatory to inhibitory), raster in true proportion.",
    ),
    ("ultralif_bounds", {}, "UltraLIF and UltraDLIF against their max-plus limits."),
    ("eqprop_gradient_theorem", {}, "The equilibrium-propagation gradient against finite differences."),
    ("eqprop_bptt_match", {}, "Equilibrium-propagation updates against BPTT gradients, step by step."),
    ("field_wave_packet", {}, "A wave packet on the cortical-field lattice and its energy budget."),
    ("field_dispersion", {}, "The lattice dispersion relation, measured against theory."),
    ("field_noise_spectrum", {}, "Noise-driven field: local and mode spectra against exact Lorentzians."),
    ("brunel", {}, "Brunel (2000) sparse E/I network against its mean-field rates."),
    ("adex_patterns", {}, "AdEx firing patterns (Naud et al. 2008): tonic, adapting, initial burst, bursting."),
    ("psp_shapes", {}, "Exponential, alpha and bi-exponential PSPs, current and conductance, against theory."),
    (
        "stdp_song",
        {},
        "Song, Miller & Abbott (2000): 1,000 plastic Poisson synapses, additive (bimodal) and multiplicative.",
    ),
    (
        "sync_ou_topologies",
        {"run.duration": "20 s"},
        "Coupled noisy learners on five graphs: spread against coupling, exact OU sum and the lambda_2 bound.",
    ),
    ("sync_scaling_n", {"run.duration": "10 s"}, "Centroid and single-learner error against the number of learners."),
    ("ltc_bounds", {}, "LTC state against Theorem 2's box under the adaptive, fused and explicit-Euler solvers."),
    ("cfc_vs_ltc", {}, "The CfC closed form against the ODE: Lemma 1's bound, symmetrised and stated drive."),
    ("cfc_speed", {}, "Error against wall time per sequence: fused LTC, adaptive RK45 LTC and the CfC cell."),
    ("curl_stability", {}, "Curl descent: kick growth rates against -2 eta s^2 lambda_min(K), and the phase boundary."),
    ("curl_chain", {}, "The 1-1-1 chain with a flipped weight: a centre, conserved r^2 and the Adler phase."),
    (
        "curl_chaos",
        {},
        "Lyapunov exponent and q: chaos past the hidden-layer boundary, re-convergence past the readout one.",
    ),
]


def main() -> None:
    """Run every gallery scenario, write its figures and the Markdown page."""
    if IMG.exists():
        shutil.rmtree(IMG)
    IMG.mkdir(parents=True)
    lines = [
        "# Gallery",
        "",
        "Figures of the shipped scenarios as `neurodyn plot` draws them (slide-sized, 16:9 at 150 dpi).",
        "Regenerate this page with `MPLBACKEND=Agg python scripts/gen_gallery.py`. Each figure comes from the",
        "command under its heading followed by `neurodyn plot` (a run that would take minutes is shortened",
        "with `--set`).",
        "",
    ]
    for stem, overrides, text in GALLERY:
        start = time.perf_counter()
        ds = neurodyn.run(ROOT / "scenarios" / f"{stem}.yaml", set=overrides, progress=False)
        figs = neurodyn.plot(ds, IMG)
        for fig in figs:
            plt.close(fig)
        for gif in IMG.glob(f"{stem}_*.gif"):  # animations stay out of the repository: the page shows stills
            gif.unlink()
        print(f"{stem}: {time.perf_counter() - start:.1f} s")
        command = " ".join([f"neurodyn run scenarios/{stem}.yaml", *(f"--set '{k}={v}'" for k, v in overrides.items())])
        lines += [f"## {stem}", "", text, "", f"`{command}`", ""]
        for path in sorted(IMG.glob(f"{stem}_*.png")):
            lines += [f"![{stem}: {path.stem.removeprefix(stem + '_')}](img/gallery/{path.name})", ""]
    PAGE.write_text("\n".join(lines))
    print(PAGE)


if __name__ == "__main__":
    main()
