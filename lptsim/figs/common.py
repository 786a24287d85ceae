"""What every figure shares: the style, the colours, saving as PNG and PDF, a grid of panels."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

METHOD_COLORS = {"fp": "black", "dr": "tab:red", "sr": "tab:blue", "bc": "tab:green", "alpt": "tab:purple"}


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    """Write ``name``.png and .pdf into ``out`` and close the figure."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.tight_layout()
    for p in paths:
        fig.savefig(p, dpi=160)
    plt.close(fig)
    return paths


def panels(n: int, width: float = 4.4, height: float = 3.5) -> tuple[plt.Figure, np.ndarray]:
    """n panels, at most three a row; unused axes switched off."""
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()


def quiet_minor_ticks(ax: plt.Axes) -> None:
    """Minor tick labels collide on short log axes."""
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
