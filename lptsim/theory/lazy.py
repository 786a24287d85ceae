"""Lazy row optimizers on a sparse table: the step each row takes, and which rows DR freezes.

A CTR table updates only the rows a batch touches. Its optimizers (lptsim.ctr.table, the torch reference backend)
are *lazy*: a row's state changes only when the row is touched. So a row's step depends on how often it is touched
(its frequency p_i), on when it was first touched (t0_i) and on the gradients it sees, not on the global step alone:

* SGD: ``lr g`` at every touch;
* row-wise Adagrad: ``lr g_i / sqrt(S_k)`` with ``S_k`` the sum over the row's own k touches of the row's mean
  squared gradient: the rate decays with the row's touch count k, not with the global step t;
* lazy Adam (``torch.optim.SparseAdam``'s rule, the table's ``adam``): the moments decay only at a touch, so after
  k touches ``m = (1 - b1) sum_j b1^(k-j) g_j``, but the bias corrections use the *global* step t. With a constant
  gradient the k-th touch at step t moves the row by ``lr A(k, t)``,
  ``A(k, t) = (1 - b1^k)/(1 - b1^t) sqrt((1 - b2^t)/(1 - b2^k))``, which is 1 only when k = t (a row touched at
  every step). A first touch late in the run moves by ``(1 - b1)/sqrt(1 - b2) = 3.16 lr``, and a row first touched
  at step 5,000 and then at every step reaches 6.5 lr;
* Adam with per-row step counts (bias corrections with k): ``A(k, k) = 1``, Adam's step as in docs/theory.md 8.1.

DR leaves an element on its grid point when its step is below Delta/2 (docs/theory.md 2.1); an element DR has not
moved sees the same gradient again when the loss decouples per row, so it is frozen for good iff every step it is
offered stays below Delta/2: its *freeze threshold* is the learning rate at which the largest step reaches Delta/2.
Derivations: docs/theory.md, section 11.a (effective steps) and 11.b (DR's freeze thresholds and frozen fractions).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from lptsim.ctr.contract import ROW_BETAS
from lptsim.theory.registry import statement

LAZY_OPTIMIZERS = ("sgd", "adagrad", "adam", "adam-rowstep")  # adam: lazy, global-step bias correction (the table's)


def lazy_adam_first_touch_limit(betas: tuple[float, float] = ROW_BETAS) -> float:
    """(1 - b1)/sqrt(1 - b2): lazy Adam's first-touch step over lr when the first touch comes late (3.162 for the
    default betas)."""
    b1, b2 = betas
    return (1 - b1) / np.sqrt(1 - b2)


@statement("exact", "derived here (docs/theory.md 11.a.1); torch.optim.SparseAdam's update rule",
           ("lazy Adam: moments updated only on touched rows, bias corrections with the global step",
            "the row's gradient is the same at each of its touches (e.g. DR keeps it frozen, loss decoupled per row)",
            "eps negligible against sqrt(v_hat)"))
def lazy_adam_step_factor(k: np.ndarray | int, t: np.ndarray | int,
                          betas: tuple[float, float] = ROW_BETAS) -> np.ndarray:
    """A(k, t) = (1 - b1^k)/(1 - b1^t) sqrt((1 - b2^t)/(1 - b2^k)): the step of a row's k-th touch, made at global
    step t >= k, in units of lr, under a constant gradient.

    The moments decay only at touches: m_k = (1 - b1^k) g, v_k = (1 - b2^k) g^2; the bias corrections divide by
    1 - b1^t and 1 - b2^t. A(t, t) = 1 (a row touched at every step: Adam's usual step); A(1, t) is the first-touch
    factor (any gradient), 0.877 at t = 80, 2.51 at t = 1,000 and -> (1 - b1)/sqrt(1 - b2) = 3.16.
    """
    b1, b2 = betas
    k = np.asarray(k, dtype=float)
    t = np.asarray(t, dtype=float)
    if np.any(k < 1) or np.any(t < k):
        raise ValueError("lazy_adam_step_factor needs 1 <= k <= t (a row's k-th touch cannot come before step k)")
    return (1 - b1**k) / (1 - b1**t) * np.sqrt((1 - b2**t) / (1 - b2**k))


@statement("exact", "derived here (docs/theory.md 11.a.1): the k = 1 case of lazy_adam_step_factor",
           ("lazy Adam with global-step bias correction", "any gradient: m_1 = (1 - b1) g, v_1 = (1 - b2) g^2",
            "eps negligible against sqrt(v_hat)"))
def lazy_adam_first_touch_factor(t0: np.ndarray | int, betas: tuple[float, float] = ROW_BETAS,
                                 g: np.ndarray | None = None, eps: float = 0.0) -> np.ndarray:
    """(1 - b1)/(1 - b1^t0) sqrt((1 - b2^t0)/(1 - b2)): |step|/lr of every element at a row's first touch, made at
    global step t0, whatever its gradient (the gradient cancels). Tends to 3.16 for the default betas.

    With ``g`` and ``eps`` (the optimizer's, added to sqrt(v_hat)) the exact value for that gradient:
    times |g| / (|g| + eps sqrt((1 - b2^t0)/(1 - b2))), which matters for the tiny gradients of rare rows."""
    b1, b2 = betas
    t0 = np.asarray(t0, dtype=float)
    if np.any(t0 < 1):
        raise ValueError("t0 is a 1-based global step")
    factor = (1 - b1) / (1 - b1**t0) * np.sqrt((1 - b2**t0) / (1 - b2))
    if g is None or eps == 0:
        return factor
    a = np.abs(np.asarray(g, dtype=float))
    return factor * a / (a + eps * np.sqrt((1 - b2**t0) / (1 - b2)))


def touch_steps(t0: np.ndarray | float, p: np.ndarray | float, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The touches k = 1..K of a row first touched at t0 and then once every 1/p steps (p <= 1), up to ``horizon``:
    returns (k, t_k) with t_k = t0 + (k - 1)/p, both shaped (rows, K) (NaN past the row's last touch)."""
    t0, p = np.broadcast_arrays(np.atleast_1d(np.asarray(t0, dtype=float)), np.atleast_1d(np.asarray(p, dtype=float)))
    if np.any((p <= 0) | (p > 1)) or np.any(t0 < 1):
        raise ValueError("touch_steps needs 0 < p <= 1 and t0 >= 1")
    kmax = int(np.max(np.floor((horizon - t0) * p) + 1)) if np.any(t0 <= horizon) else 1
    k = np.arange(1, max(kmax, 1) + 1, dtype=float)[None, :]
    t = np.floor(t0[:, None] + (k - 1) / p[:, None])
    t = np.where(t <= horizon, t, np.nan)
    return np.broadcast_to(k, t.shape).copy(), t


@statement("exact", "derived here (docs/theory.md 11.a.2): the largest A(k, t_k) over a row's touches",
           ("lazy Adam with global-step bias correction", "constant gradient at every touch",
            "first touch at t0, then one touch every 1/p steps, up to the horizon", "eps negligible"))
def lazy_adam_peak_factor(t0: np.ndarray | float, p: np.ndarray | float, horizon: int,
                          betas: tuple[float, float] = ROW_BETAS) -> np.ndarray:
    """max_k A(k, t0 + (k-1)/p): the largest step (over lr) a row takes in the run. A row first touched at step 80,
    1,000 or 5,000 and then at every step (p = 1) peaks at 1.95, 5.24 and 6.55 (k = 15, 12, 12); a row touched
    every step from step 1 never exceeds 1."""
    k, t = touch_steps(t0, p, horizon)
    ok = ~np.isnan(t)
    a = np.where(ok, lazy_adam_step_factor(np.where(ok, k, 1.0), np.where(ok, np.maximum(t, k), 1.0), betas), 0.0)
    return a.max(axis=1)


@statement("upper bound", "derived here (docs/theory.md 11.a.3): Cauchy-Schwarz on the row's k touches",
           ("lazy Adam with global-step bias correction", "any gradients", "eps = 0"))
def lazy_adam_step_bound(k: np.ndarray | int, t: np.ndarray | int,
                         betas: tuple[float, float] = ROW_BETAS) -> np.ndarray:
    """|m_hat/sqrt(v_hat)| at a row's k-th touch (global step t) is at most
    (1-b1)/(1-b1^t) sqrt((1-b2^t)/(1-b2)) sqrt(sum_{j<k} (b1^2/b2)^j): <= 7.27 for the default betas, for any t.

    The same inequality as adam_step_bound (8.2), with the touches as Adam's steps and the global step in the
    corrections: a row whose k touches all come late can move 7.27 lr, against 3.16 lr for one touch."""
    b1, b2 = betas
    k = np.asarray(k, dtype=float)
    t = np.asarray(t, dtype=float)
    r = b1 * b1 / b2
    return (1 - b1) / (1 - b1**t) * np.sqrt((1 - b2**t) / (1 - b2)) * np.sqrt((1 - r**k) / (1 - r))


@statement("approximation", "derived here (docs/theory.md 11.a.4): mean-field moments over the row's touches",
           ("lazy row optimizers of lptsim.ctr.table", "touches of a row at rate p from its first touch t0",
            "per-touch gradient of mean g_mean and root mean square g_rms per element (g_rms = |g_mean|: constant,"
            " then exact at the expected touch times)", "row-wise Adagrad: rel = |g_i| / rms over the row"))
def lazy_effective_step(optimizer: str, lr: float, p: np.ndarray | float, t0: np.ndarray | float,
                        t: np.ndarray | float, g_mean: float = 1.0, g_rms: float | None = None, rel: float = 1.0,
                        betas: tuple[float, float] = ROW_BETAS) -> np.ndarray:
    """The step a row takes at a touch at global step t, for a row of frequency p first touched at t0.

    k = 1 + floor(p (t - t0)) touches so far. SGD: lr |g_mean|; row-wise Adagrad: lr rel |g_mean| / (g_rms sqrt(k));
    lazy Adam: lr A(k, t) |g_mean|/g_rms; Adam with per-row step counts: lr |g_mean|/g_rms (A(k, k) = 1). With noisy
    gradients (g_rms > |g_mean|) Adam's mean step shrinks by the signal fraction |g_mean|/g_rms (E m = (1 - b1^k)
    g_mean, E v = (1 - b2^k) g_rms^2); its fluctuations are not in this mean-field value.
    """
    if optimizer not in LAZY_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {LAZY_OPTIMIZERS}, got {optimizer!r}")
    g_rms = abs(g_mean) if g_rms is None else g_rms
    if g_rms <= 0 or g_rms < abs(g_mean) * (1 - 1e-12):
        raise ValueError("g_rms must be positive and at least |g_mean|")
    p, t0, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, t0, t)))
    if np.any(t < t0):
        raise ValueError("a row's touch cannot come before its first touch (t >= t0)")
    k = 1 + np.floor(p * (t - t0))
    signal = abs(g_mean) / g_rms
    if optimizer == "sgd":
        return lr * abs(g_mean) * np.ones_like(k)
    if optimizer == "adagrad":
        return lr * rel * signal / np.sqrt(k)
    if optimizer == "adam":
        return lr * signal * lazy_adam_step_factor(k, np.maximum(t, k), betas)
    return lr * signal * np.ones_like(k)


# -- 11.b: DR's freeze thresholds and frozen fractions ------------------------------------------------------------

@statement("exact", "derived here (docs/theory.md 11.b.1)",
           ("DR (floor(v + 1/2)) on a grid of step Delta", "constant gradient at every touch while the row is frozen "
            "(loss decoupled per row)", "touches: first at t0, then one every 1/p steps, up to the horizon",
            "Adagrad: rel_i = |g_i| / rms_row(g), eps negligible; Adam: eps negligible"))
def dr_freeze_threshold(optimizer: str, delta: float, t0: np.ndarray | float, p: np.ndarray | float, horizon: int,
                        g: float = 1.0, rel: float = 1.0, betas: tuple[float, float] = ROW_BETAS) -> np.ndarray:
    """The learning rate below which DR never moves the element: Delta / (2 x its largest step per unit lr).

    SGD: Delta/(2|g|) (every touch the same); row-wise Adagrad: Delta/(2 rel) (the first touch is the largest, later
    ones shrink like 1/sqrt(k)); lazy Adam: Delta/(2 max_k A(k, t_k)), which falls with a late first touch (down to
    Delta/(2 x 6.6) for a row first touched late and then often); Adam with per-row step counts: Delta/2. A row below
    its threshold is frozen for good (by induction: unmoved, it sees the same gradient again); above it, it moves
    at the touch where the step first reaches Delta/2. Ties (a step of exactly Delta/2) move half of the signs; the
    threshold is the boundary either way.
    """
    t0, p = np.broadcast_arrays(np.atleast_1d(np.asarray(t0, dtype=float)), np.atleast_1d(np.asarray(p, dtype=float)))
    if optimizer == "sgd":
        return np.full(t0.shape, delta / (2 * abs(g)))
    if optimizer == "adagrad":
        return np.full(t0.shape, delta / (2 * rel))
    if optimizer == "adam":
        return delta / (2 * lazy_adam_peak_factor(t0, p, horizon, betas))
    if optimizer == "adam-rowstep":
        return np.full(t0.shape, delta / 2)
    raise ValueError(f"optimizer must be one of {LAZY_OPTIMIZERS}, got {optimizer!r}")


@statement("exact", "derived here (docs/theory.md 11.b.2)",
           ("DR", "SGD on the row", "per-touch gradients of the frozen element i.i.d. N(g_mean, g_sd^2)",
            "touches independent of the gradients"))
def sgd_dr_frozen_probability(lr: float, delta: float, touches: np.ndarray | int, g_mean: float,
                              g_sd: float) -> np.ndarray:
    """P(an element DR has not moved stays unmoved through ``touches`` touches) = (1 - q)^K, with
    q = P(|lr g| >= Delta/2) the chance that one touch moves it (its gradient is redrawn at each touch, the element
    staying where it is). A frequent row freezes far less often than a rare one at the same lr."""
    if g_sd <= 0:
        q = float(abs(lr * g_mean) >= delta / 2)
    else:
        h = delta / (2 * lr)
        q = float(stats.norm.sf((h - g_mean) / g_sd) + stats.norm.cdf((-h - g_mean) / g_sd))
    return (1.0 - q) ** np.asarray(touches, dtype=float)


def frozen_fraction_by_bucket(frozen: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The mean of ``frozen`` (a per-row probability or 0/1) over the rows whose touch count lies in each bucket
    [edges[j], edges[j+1]) (NaN for an empty bucket): a frozen fraction per frequency bucket."""
    frozen, counts = np.asarray(frozen, dtype=float), np.asarray(counts)
    which = np.searchsorted(np.asarray(edges), counts, side="right") - 1
    out = np.full(len(edges) - 1, np.nan)
    for j in range(len(edges) - 1):
        sel = which == j
        if sel.any():
            out[j] = frozen[sel].mean()
    return out


@statement("exact", "derived here (docs/theory.md 11.b.3): sgd_dr_frozen_probability per step, mixed over the "
           "Binomial count of a step's lookups of the row",
           ("DR", "SGD on the row", "a step's k ~ Binomial(batch, p) lookups of the row add their gradients: "
            "k g_mean + sqrt(k) g_sd xi per element, xi ~ N(0, 1) independent across elements and steps",
            "the row's elements share k; each element's gradient mean is fixed while the row has not moved"))
def sparse_dr_frozen_probability(lr: float, delta: float, p: float, batch: int, steps: int, g_mean: np.ndarray,
                                 g_sd: float) -> float:
    """P(DR leaves a row of frequency p unmoved for ``steps`` steps) = (sum_k P(k) prod_i P(element i stays | k))^T.

    Each factor is sgd_dr_frozen_probability for one touch with the summed gradient of k lookups (mean k g_mean_i,
    standard deviation sqrt(k) g_sd); the elements share the step's count k, so the product over them is taken
    inside the mixture. k = 0 (the row not looked up) always stays.
    """
    from lptsim.theory.sparse import touch_pmf

    k, pmf = touch_pmf(p, batch)
    g = np.atleast_1d(np.asarray(g_mean, dtype=float))
    stay = pmf[0] + sum(pk * float(np.prod([sgd_dr_frozen_probability(lr, delta, 1, kk * gi, np.sqrt(kk) * g_sd)
                                            for gi in g])) for kk, pk in zip(k[1:], pmf[1:], strict=True))
    with np.errstate(over="ignore"):  # a broken variant (--power) may give stay > 1: inf, not an exception
        return float(np.float64(stay) ** int(steps))


@statement("approximation", "derived here (docs/theory.md 11.b.4): 11.b.1's rule along a frozen table's gradients",
           ("an element DR (or SR) has not moved sees the gradients a frozen table sees (a pilot run's), at the "
            "pilot's touch steps", "the table's lazy optimizers: SGD, row-wise Adagrad, lazy Adam (global step)",
            "elements start on the grid"))
def replay_frozen(touches: list, n_rows: int, optimizer: str, lr: float, delta: float, rounding: str = "dr",
                  betas: tuple[float, float] = ROW_BETAS, eps: float = 1e-8) -> np.ndarray:
    """Per row, the probability that an element is never moved: ``touches`` lists, per global step, the rows it
    touched and their gradients ((rows,), (rows, dim)); the lazy optimizer's step s at each touch follows the table's
    rules (SGD lr g; row-wise Adagrad lr g_i / (sqrt(S_k) + eps); lazy Adam lr m_hat / (sqrt(v_hat) + eps) with the
    global step in the corrections). DR keeps an element iff every step has -Delta/2 < s <= Delta/2 (2.1); SR, from
    a grid point, moves it with probability min(|s|/Delta, 1) at each touch, so it stays with the product of the
    complements. The frozen fraction of a bucket is the mean over its rows."""
    if optimizer not in ("sgd", "adagrad", "adam"):
        raise ValueError(f"optimizer must be sgd, adagrad or adam, got {optimizer!r}")
    if rounding not in ("dr", "sr"):
        raise ValueError(f"rounding must be 'dr' or 'sr', got {rounding!r}")
    from lptsim.theory.dr import dr_stalls

    b1, b2 = betas
    dim = touches[0][1].shape[1] if touches else 1
    s_sq, m, v = np.zeros(n_rows), np.zeros((n_rows, dim)), np.zeros((n_rows, dim))
    stay = np.ones((n_rows, dim))
    for t, (rows, g) in enumerate(touches, start=1):
        if optimizer == "sgd":
            step = lr * g
        elif optimizer == "adagrad":
            s_sq[rows] += np.mean(g * g, axis=1)
            step = lr * g / (np.sqrt(s_sq[rows])[:, None] + eps)
        else:
            m[rows] = b1 * m[rows] + (1 - b1) * g
            v[rows] = b2 * v[rows] + (1 - b2) * g * g
            step = lr * (m[rows] / (1 - b1**t)) / (np.sqrt(v[rows] / (1 - b2**t)) + eps)
        if rounding == "dr":
            stay[rows] *= dr_stalls(1.0, step, delta)
        else:
            stay[rows] *= 1 - np.minimum(np.abs(step) / delta, 1.0)
    return stay.mean(axis=1)
