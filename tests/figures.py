"""What every neurodyn figure must be: slide-sized, nothing cut off, every legend entry once."""

from __future__ import annotations

from matplotlib.figure import Figure

from neurodyn.plotting import DPI, SLIDE_SIZE


def assert_slide_figure(fig: Figure) -> None:
    """Assert ``fig`` is :data:`SLIDE_SIZE` inches, saved at :data:`DPI`, unclipped, legends without repeats.

    Clipping: after a draw, the tight bounding box of every axes (its title, labels, tick labels and
    legend) and of every figure-level text and legend lies inside the figure (1 px of slack).
    """
    assert tuple(fig.get_size_inches()) == SLIDE_SIZE, (fig.get_label(), tuple(fig.get_size_inches()))
    assert fig.canvas.get_renderer() is not None
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    pieces = [(f"axes {ax.get_title()!r}", ax.get_tightbbox(renderer)) for ax in fig.axes if ax.get_visible()]
    pieces += [(f"text {t.get_text()!r}", t.get_window_extent(renderer)) for t in fig.texts if t.get_text()]
    pieces += [("figure legend", leg.get_window_extent(renderer)) for leg in fig.legends]
    if fig._suptitle is not None and fig._suptitle.get_text():
        pieces.append((f"suptitle {fig._suptitle.get_text()!r}", fig._suptitle.get_window_extent(renderer)))
    for what, bb in pieces:
        if bb is None:
            continue
        inside = bb.x0 >= box.x0 - 1 and bb.y0 >= box.y0 - 1 and bb.x1 <= box.x1 + 1 and bb.y1 <= box.y1 + 1
        assert inside, (fig.get_label(), what, bb.bounds, box.bounds)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    for leg in legends:
        labels = [t.get_text() for t in leg.get_texts()]
        assert len(labels) == len(set(labels)), (fig.get_label(), labels)
    fonts = [t.get_fontsize() for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    assert min(fonts, default=12) >= 12, (fig.get_label(), fonts)


def assert_slide_png(path) -> None:
    """A written PNG has the pixel size of :data:`SLIDE_SIZE` at :data:`DPI` (rounded down by Agg)."""
    from PIL import Image

    with Image.open(path) as img:
        assert img.size == (int(SLIDE_SIZE[0] * DPI), int(SLIDE_SIZE[1] * DPI)), (path, img.size)
