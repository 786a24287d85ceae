"""Layout faults a reader sees, found from the rendered figure (``Artist.get_window_extent`` after a draw, as
matplotlib's and seaborn's own tests do): text boxes that overlap (titles, axis labels, tick labels, legends,
annotations, the caption, colour bars), annotations printed over a data line, and lines without a legend entry."""

from __future__ import annotations

from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

# Boxes that touch by a pixel or less are not an overlap (font metrics round).
TOLERANCE_PX = 1.0


def _shown(t: Text) -> bool:
    return t.get_visible() and bool(t.get_text().strip()) and t.get_alpha() != 0


def _tick_labels(axis: object) -> list[Text]:
    """The major tick labels that are drawn: visible, non-empty, with their tick inside the view interval."""
    lo, hi = sorted(axis.get_view_interval())
    span = hi - lo
    out = []
    for loc, lab in zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=False):
        if _shown(lab) and lo - 1e-9 * span <= loc <= hi + 1e-9 * span:
            out.append(lab)
    return out


def text_boxes(fig: plt.Figure) -> list[tuple[str, Bbox]]:
    """Every piece of text a reader sees, with its box in display pixels (the figure must be drawn)."""
    r = fig.canvas.get_renderer()
    boxes: list[tuple[str, Bbox]] = [(f"figure text {t.get_text()[:30]!r}", t.get_window_extent(r))
                                     for t in fig.texts if _shown(t)]
    boxes += [(f"figure legend {k}", leg.get_window_extent(r)) for k, leg in enumerate(fig.legends)]
    for k, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        tag = f"axes {k}"
        for t in (ax.title, ax._left_title, ax._right_title):  # noqa: SLF001 - the three title slots
            if _shown(t):
                boxes.append((f"{tag} title {t.get_text()[:30]!r}", t.get_window_extent(r)))
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if _shown(axis.label):
                boxes.append((f"{tag} {name}label {axis.label.get_text()[:30]!r}", axis.label.get_window_extent(r)))
            boxes += [(f"{tag} {name}tick {t.get_text()!r}", t.get_window_extent(r)) for t in _tick_labels(axis)]
            if _shown(axis.offsetText):
                boxes.append((f"{tag} {name} offset", axis.offsetText.get_window_extent(r)))
        boxes += [(f"{tag} text {t.get_text()[:30]!r}", t.get_window_extent(r)) for t in ax.texts if _shown(t)]
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            boxes.append((f"{tag} legend", leg.get_window_extent(r)))
    return boxes


def _overlap(a: Bbox, b: Bbox) -> bool:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w > TOLERANCE_PX and h > TOLERANCE_PX


def overlapping_text(fig: plt.Figure, draw: bool = True) -> list[str]:
    """Pairs of text boxes that overlap, as readable strings (empty when none)."""
    if draw:
        fig.canvas.draw()
    boxes = text_boxes(fig)
    return [f"{na} overlaps {nb}" for (na, a), (nb, b) in combinations(boxes, 2) if _overlap(a, b)]


def _densify(xy: np.ndarray, step: float = 2.0) -> np.ndarray:
    """Points along a polyline every ``step`` pixels, so that a segment crossing a box is seen."""
    pts = [xy[:1]]
    for p, q in zip(xy[:-1], xy[1:], strict=True):
        n = int(np.ceil(np.hypot(*(q - p)) / step)) if np.all(np.isfinite([p, q])) else 0
        if n:
            pts.append(p + (q - p) * np.linspace(0, 1, n + 1)[1:, None])
    return np.concatenate(pts)


def text_over_lines(fig: plt.Figure, draw: bool = True) -> list[str]:
    """Annotations (``ax.text``/``annotate`` inside an axes) printed over one of its data lines."""
    if draw:
        fig.canvas.draw()
    r = fig.canvas.get_renderer()
    found = []
    for k, ax in enumerate(fig.axes):
        texts = [t for t in ax.texts if _shown(t)]
        if not texts:
            continue
        lines = [ln for ln in ax.lines if ln.get_visible() and ln.get_linestyle() not in ("None", "", " ")]
        for t in texts:
            box = t.get_window_extent(r)
            for ln in lines:
                xy = ln.get_transform().transform(np.column_stack(ln.get_data()).astype(float))
                pts = _densify(xy[np.all(np.isfinite(xy), axis=1)])
                inside = ((pts[:, 0] > box.x0 + TOLERANCE_PX) & (pts[:, 0] < box.x1 - TOLERANCE_PX)
                          & (pts[:, 1] > box.y0 + TOLERANCE_PX) & (pts[:, 1] < box.y1 - TOLERANCE_PX))
                if inside.any():
                    found.append(f"axes {k}: text {t.get_text()[:30]!r} lies over line {ln.get_label()!r}")
    return found


def _legend_labels(fig: plt.Figure, ax: plt.Axes) -> set[str]:
    legends: list[Legend] = [leg for leg in [ax.get_legend(), *fig.legends] if leg is not None]
    legends += [a.get_legend() for a in fig.axes if a.get_legend() is not None]  # a legend may list other panels
    return {t.get_text() for leg in legends for t in leg.get_texts()}


def unlabelled_lines(fig: plt.Figure) -> list[str]:
    """In panels with two or more lines, lines that no legend names. A reference line that the caption or an
    axis explains opts out with the label ``_nolegend_``."""
    found = []
    for k, ax in enumerate(fig.axes):
        lines: list[Line2D] = [ln for ln in ax.lines if ln.get_visible() and ln.get_label() != "_nolegend_"]
        if len(lines) < 2:
            continue
        named = _legend_labels(fig, ax)
        found += [f"axes {k} ({ax.get_title()[:30]!r}): line {ln.get_label()!r} has no legend entry"
                  for ln in lines if ln.get_label() not in named]
    return found


def layout_faults(fig: plt.Figure) -> list[str]:
    """All three kinds of fault (empty for a clean figure), from one draw."""
    fig.canvas.draw()
    return overlapping_text(fig, draw=False) + text_over_lines(fig, draw=False) + unlabelled_lines(fig)
