"""Every figure renders from stored results (tests/data/figs, made by its make_fixture.py from a real
`lptsim figs --ctr` run) without a layout fault: no overlapping text boxes, no annotation over a data line, no
unnamed line; maths in mathtext; a caption with the setting; bound figures with their slack at every t; an index
that lists every figure with its checks. The layout checks are shown failing on planted faults."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lptsim import cli
from lptsim.figs import FIGURES, SWEEPS, draw_all, figure_for
from lptsim.figs.common import Drawn, finish, style
from lptsim.figs.index import DATA_FILE, check_ids, load_data, write_index
from lptsim.figs.layout import layout_faults, overlapping_text, text_over_lines, unlabelled_lines

FIXTURE = Path(__file__).parent / "data" / "figs" / "figs_data.json.gz"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture as a figs_data.json, as `lptsim figs` leaves it."""
    folder = tmp_path_factory.mktemp("figs")
    (folder / DATA_FILE).write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    return folder / DATA_FILE


@pytest.fixture(scope="module")
def drawn(stored: Path) -> dict[str, Drawn]:
    results, sweeps, _ = load_data(stored)
    figures = {d.name: d for d in draw_all(results, sweeps)}
    yield figures
    plt.close("all")


def test_every_figure_is_drawn(drawn):
    assert set(drawn) == set(FIGURES), set(FIGURES) ^ set(drawn)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_has_no_layout_fault(drawn, name):
    faults = layout_faults(drawn[name].fig)
    assert not faults, "\n".join(faults)


def _all_text(fig: plt.Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible())]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_writes_maths_as_mathtext_and_states_its_setting(drawn, name):
    texts = _all_text(drawn[name].fig)
    plain = [t for t in texts if re.search(r"\b(alpha|sigma|Delta|mu)\b", t.replace("$", " ")) and "\\" not in t]
    assert not plain, plain
    caption = drawn[name].caption
    flat = {" ".join(t.split()) for t in texts}
    assert " ".join(caption.split()) in flat  # the caption is on the figure (wrapped), not only in the index
    assert "Setting:" in caption or re.search(r"d = \d+", caption), caption
    assert re.search(r"\d+ seeds?\b", caption) or "deterministic" in caption, caption  # how many draws, or why none


@pytest.mark.parametrize("name", ["bounds_vs_measured", "dr_bounds"])
def test_bound_figures_show_the_slack_at_every_t(drawn, stored, name):
    """Each bound's lower panel plots bound / measured at every recorded t (not only its minimum)."""
    results = {r.id: r for r in load_data(stored)[0]}
    shown = {r for r in results if r.startswith(FIGURES[name]) and "bound" in results[r].data}
    lines = [ln for ax in drawn[name].fig.axes for ln in ax.lines if ln.get_label().startswith("bound / ")]
    assert len(lines) == len(shown) > 0
    curves = [np.asarray(results[i].data["bound"], float) / np.asarray(results[i].data["y"], float) for i in shown]
    for ln in lines:
        y = np.asarray(ln.get_ydata(), float)
        assert any(c.shape == y.shape and np.allclose(c, y, rtol=1e-9) for c in curves)
        assert y.max() / y.min() > 1.05  # a curve, not a constant


def test_every_figure_names_checks_that_exist(stored):
    results = load_data(stored)[0]
    for name, prefixes in FIGURES.items():
        assert bool(check_ids(name, results)) == bool(prefixes), name
    assert all(figure_for(r) for r in results)


def test_index_lists_every_figure_with_its_caption_and_check_ids(drawn, stored, tmp_path):
    results = load_data(stored)[0]
    text = write_index(tmp_path, list(drawn.values()), results).read_text()
    for name, d in drawn.items():
        assert f"## {name}" in text and f"![{name}]({name}.png)" in text
        assert d.caption.split("\n")[0].replace("_", r"\_")[:60] in text
        assert all(f"`{i}`" in text for i in check_ids(name, results))


def test_cli_redraws_from_stored_data(stored, tmp_path, capsys):
    """`lptsim figs --redraw` draws without simulating; here from a copy that keeps two figures' data."""
    payload = json.loads(stored.read_text())
    payload["results"] = [r for r in payload["results"] if r["id"].startswith("sr.rate-")]
    payload["sweeps"] = {"adam_freeze": payload["sweeps"]["adam_freeze"]}
    (tmp_path / DATA_FILE).write_text(json.dumps(payload))
    assert cli.main(["figs", "--out", str(tmp_path), "--redraw", "--quiet", "--force"]) == 0
    assert {p.name for p in tmp_path.glob("*.png")} == {"rates.png", "adam_freeze.png"}
    index = (tmp_path / "index.md").read_text()
    assert "`sr.rate-sqrt`" in index and "## adam_freeze" in index
    assert set(SWEEPS) >= {"adam_freeze"}


# Controls: each layout check fails on a planted fault ------------------------------------------------------------

def _clean() -> plt.Figure:
    style()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [1, 4, 9], label="a")
    ax.plot([1, 2, 3], [2, 3, 4], label="b")
    ax.set(xlabel="x", ylabel="y", title="clean")
    ax.legend(loc="upper left")
    return finish(Drawn("clean", fig, "A clean figure. Setting: 2 seeds.")).fig


def test_layout_checks_pass_a_clean_figure():
    fig = _clean()
    assert layout_faults(fig) == []
    plt.close(fig)


def test_overlap_check_fails_on_a_planted_overlap():
    fig = _clean()
    ax = fig.axes[0]
    ax.text(0.5, 1.02, "a note over the title", transform=ax.transAxes, ha="center", va="bottom")
    assert any("title" in f for f in overlapping_text(fig))
    plt.close(fig)


def test_overlap_check_fails_on_crowded_tick_labels():
    fig = _clean()
    ax = fig.axes[0]
    ax.set_xticks(np.linspace(1, 3, 12), [f"{v:.4f}" for v in np.linspace(1, 3, 12)])
    assert any("xtick" in f for f in overlapping_text(fig))
    plt.close(fig)


def test_line_check_fails_on_an_annotation_over_a_line():
    fig = _clean()
    fig.axes[0].text(2, 4, "over the line", ha="center", va="center")
    assert text_over_lines(fig)
    plt.close(fig)


def test_legend_check_fails_on_a_line_without_an_entry():
    fig = _clean()
    fig.axes[0].axvline(2.5, color="tab:purple")
    assert unlabelled_lines(fig)
    plt.close(fig)
