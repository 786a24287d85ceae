"""Synthetic problems with known optimum and constants, vectorised over seeds.

Every problem takes parameter matrices ``W`` of shape ``(seeds, d)`` and returns the
objective ``F(W)`` of shape ``(seeds,)``, the full gradient and a stochastic gradient
(from a numpy Generator, so a seed fixes every draw). ``constants`` holds what the
theorems need, each with a note saying whether it is exact, a bound or an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import linalg


@dataclass
class Constants:
    """Constants the bounds use. ``how[name]`` says how each value was obtained."""

    L: float  # smoothness: largest Hessian eigenvalue (on the region of interest)
    mu: float  # strong convexity (0 when the problem is not strongly convex)
    G: float  # bound on sqrt(E ||g||^2) over the region of interest
    D: float  # radius of the region of interest around w*
    noise: float  # standard deviation of the gradient noise per coordinate (or its estimate)
    how: dict[str, str] = field(default_factory=dict)


class Problem:
    """Base class: subclasses set ``d``, ``w_star``, ``f_star``, ``w0``, ``constants``."""

    name: str = "problem"
    d: int
    w_star: np.ndarray
    f_star: float
    w0: np.ndarray
    constants: Constants
    convex: bool = True

    def F(self, W: np.ndarray) -> np.ndarray:  # noqa: N802 - F is the paper's notation
        """Objective for each row of W, shape (seeds,)."""
        raise NotImplementedError

    def grad(self, W: np.ndarray) -> np.ndarray:
        """Exact gradient for each row of W, shape (seeds, d)."""
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, seeds: int) -> Any:
        """One random sample per seed (noise, or minibatch indices) for :meth:`sample_grad`."""
        raise NotImplementedError

    def sample_grad(self, W: np.ndarray, sample: Any) -> np.ndarray:
        """The stochastic gradient of each row of W on its drawn sample (unbiased)."""
        raise NotImplementedError

    def stoch_grad(self, W: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An unbiased stochastic gradient for each row of W (independent across rows)."""
        return self.sample_grad(W, self.draw(rng, W.shape[0]))

    def __repr__(self) -> str:
        return f"{self.name}(d={self.d})"


def estimate_smoothness(prob: Problem, points: np.ndarray, iters: int = 50, seed: int = 0) -> float:
    """Largest Hessian eigenvalue over ``points`` (rows), by power iteration on finite-difference
    Hessian-vector products. An estimate of L near those points, not a global bound."""
    rng = np.random.default_rng(seed)
    best = 0.0
    for w in np.atleast_2d(points):
        v = rng.normal(size=w.size)
        lam = 0.0
        for _ in range(iters):
            v /= np.linalg.norm(v)
            h = 1e-5
            hv = (prob.grad((w + h * v)[None])[0] - prob.grad((w - h * v)[None])[0]) / (2 * h)
            lam = float(v @ hv)
            v = hv
        best = max(best, abs(lam))
    return best


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    ok = value >= 0 if allow_zero else value > 0
    if not np.isfinite(value) or not ok:
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value}")
    return float(value)


def _count(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Quadratic(Problem):
    """F(w) = 1/2 (w - w*)^T H (w - w*), Hessian spectrum evenly spaced in [mu, L].

    ``mu == L`` gives the isotropic case H = mu I. Gradient noise: additive Gaussian,
    standard deviation ``noise`` per coordinate. w* is drawn uniformly in [-1, 1]^d (off
    any grid with probability 1) unless ``w_star`` gives it; F* = 0; the default start is
    w0 = 0 (on every grid).
    """

    name = "quadratic"

    def __init__(self, d: int, mu: float, L: float, noise: float, seed: int = 0, scale: float = 1.0,  # noqa: N803
                 w_star: np.ndarray | None = None):
        self.d = _count("d", d)
        self.mu = _positive("mu", mu)
        self.L = _positive("L", L)
        if self.L < self.mu:
            raise ValueError(f"L must be >= mu, got L={L}, mu={mu}")
        self.noise = _positive("noise", noise, allow_zero=True)
        rng = np.random.default_rng(seed)
        self.isotropic = self.L == self.mu
        eig = np.linspace(self.mu, self.L, self.d)
        if self.isotropic:
            self.H = self.mu * np.eye(self.d)
        else:
            q, _ = np.linalg.qr(rng.normal(size=(self.d, self.d)))
            self.H = (q * eig) @ q.T
        self.eigenvalues = eig
        self.w_star = rng.uniform(-scale, scale, self.d)
        if w_star is not None:  # a chosen optimum (e.g. with controlled positions on a grid)
            self.w_star = np.array(w_star, dtype=float).reshape(-1)
            if self.w_star.shape != (self.d,) or not np.isfinite(self.w_star).all():
                raise ValueError(f"w_star must be {self.d} finite values, got shape {np.shape(w_star)}")
        self.f_star = 0.0
        self.w0 = np.zeros(self.d)
        dist0 = float(np.linalg.norm(self.w0 - self.w_star))
        self.constants = Constants(
            L=self.L, mu=self.mu, G=float(np.sqrt((self.L * dist0) ** 2 + self.d * self.noise**2)), D=dist0,
            noise=self.noise,
            how={"L": "exact", "mu": "exact", "noise": "exact",
                 "D": "estimate: ||w0 - w*||, assuming the iterates stay in that ball",
                 "G": "bound on the ball of radius D: sqrt(L^2 D^2 + d noise^2)"},
        )

    def _hess_mul(self, diff: np.ndarray) -> np.ndarray:
        return self.mu * diff if self.isotropic else diff @ self.H

    def F(self, W: np.ndarray) -> np.ndarray:  # noqa: N802
        diff = W - self.w_star
        return 0.5 * np.sum(diff * self._hess_mul(diff), axis=-1)

    def grad(self, W: np.ndarray) -> np.ndarray:
        return self._hess_mul(W - self.w_star)

    def draw(self, rng: np.random.Generator, seeds: int) -> np.ndarray | None:
        return self.noise * rng.standard_normal((seeds, self.d)) if self.noise > 0 else None

    def sample_grad(self, W: np.ndarray, sample: np.ndarray | None) -> np.ndarray:
        g = self.grad(W)
        return g if sample is None else g + sample


class LeastSquares(Problem):
    """F(w) = 1/(2n) ||A w - b||^2 with condition number ``cond`` of A^T A / n; minibatch gradients.

    w* and F* from the normal equations (exact to float64 rounding); L and mu are the
    extreme eigenvalues of A^T A / n (exact).
    """

    name = "least_squares"

    def __init__(self, n: int, d: int, cond: float = 10.0, batch: int = 1, seed: int = 0, noise: float = 0.1):
        self.n, self.d, self.batch = _count("n", n), _count("d", d), _count("batch", batch)
        if self.n < self.d:
            raise ValueError(f"n must be >= d for a unique minimiser, got n={n}, d={d}")
        cond = _positive("cond", cond)
        if cond < 1:
            raise ValueError(f"cond must be >= 1, got {cond}")
        rng = np.random.default_rng(seed)
        u, _ = np.linalg.qr(rng.normal(size=(self.n, self.d)))
        v, _ = np.linalg.qr(rng.normal(size=(self.d, self.d)))
        sing = np.sqrt(self.n * np.linspace(1.0, cond, self.d))
        self.A = (u * sing) @ v.T
        self.At = np.ascontiguousarray(self.A.T)  # a strided A.T makes W @ A.T far slower in OpenBLAS
        w_true = rng.uniform(-1, 1, self.d)
        self.b = self.A @ w_true + noise * rng.standard_normal(self.n)
        self.w_star = linalg.lstsq(self.A, self.b)[0]
        self.f_star = float(0.5 * np.mean((self.A @ self.w_star - self.b) ** 2))
        self.w0 = np.zeros(self.d)
        gram = self.A.T @ self.A / self.n
        eig = np.linalg.eigvalsh(gram)
        dist0 = float(np.linalg.norm(self.w_star))
        per_sample = np.linalg.norm(self.A, axis=1) * (np.linalg.norm(self.A, axis=1) * dist0 + np.abs(
            self.A @ self.w_star - self.b))
        self.constants = Constants(
            L=float(eig[-1]), mu=float(eig[0]), G=float(np.sqrt(np.mean(per_sample**2))), D=dist0,
            noise=float(np.sqrt(np.mean(np.sum((self.A * (self.A @ self.w_star - self.b)[:, None]) ** 2, 1))
                                / self.batch / self.d)),
            how={"L": "exact", "mu": "exact", "D": "estimate: ||w0 - w*||",
                 "G": "bound on the ball of radius D (per-sample ||a|| (||a|| D + |residual*|), RMS)",
                 "noise": "exact at w*: per-coordinate RMS sd of the minibatch gradient"},
        )

    def F(self, W: np.ndarray) -> np.ndarray:  # noqa: N802
        return 0.5 * np.mean((W @ self.At - self.b) ** 2, axis=-1)

    def grad(self, W: np.ndarray) -> np.ndarray:
        return (W @ self.At - self.b) @ self.A / self.n

    def draw(self, rng: np.random.Generator, seeds: int) -> np.ndarray:
        return rng.integers(0, self.n, size=(seeds, self.batch))

    def sample_grad(self, W: np.ndarray, idx: np.ndarray) -> np.ndarray:
        a = self.A[idx]  # (S, batch, d)
        resid = np.einsum("sbd,sd->sb", a, W) - self.b[idx]
        return np.einsum("sb,sbd->sd", resid, a) / self.batch


class Logistic(Problem):
    """L2-regularised logistic regression: mean log(1 + exp(-y x.w)) + reg/2 ||w||^2.

    Data: x ~ N(0, I), labels from a random teacher with 10% flips. w* by Newton's method
    to ||grad F|| < 1e-12 (F* then exact to about 1e-20, far below the 1e-10 asked).
    L = lambda_max(X^T X)/(4n) + reg is a bound; mu = reg is exact (a lower bound on the
    Hessian's smallest eigenvalue).
    """

    name = "logistic"

    def __init__(self, n: int, d: int, reg: float = 1e-2, seed: int = 0, batch: int = 1):
        self.n, self.d, self.batch = _count("n", n), _count("d", d), _count("batch", batch)
        self.reg = _positive("reg", reg)
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((self.n, self.d))
        teacher = rng.normal(size=self.d) * 2 / np.sqrt(self.d)
        y = np.sign(self.X @ teacher + 1e-12)
        flip = rng.random(self.n) < 0.1
        self.y = np.where(flip, -y, y)
        self.Z = self.X * self.y[:, None]  # margins are Z @ w
        self.Zt = np.ascontiguousarray(self.Z.T)  # W @ Z.T on the strided view is ~500x slower in OpenBLAS
        self.w_star = self._newton()
        self.f_star = float(self.F(self.w_star[None])[0])
        self.w0 = np.zeros(self.d)
        dist0 = float(np.linalg.norm(self.w_star))
        lmax = float(np.linalg.eigvalsh(self.X.T @ self.X / self.n)[-1])
        row_norms = np.linalg.norm(self.X, axis=1)
        self.constants = Constants(
            L=lmax / 4 + self.reg, mu=self.reg,
            G=float(np.sqrt(np.mean(row_norms**2)) + self.reg * (dist0 + dist0)), D=dist0,
            noise=float(np.sqrt(np.mean(row_norms**2) / self.d / self.batch) / 2),
            how={"L": "bound: lambda_max(X^T X / n)/4 + reg", "mu": "bound: reg",
                 "G": "bound on the ball of radius 2||w*||: RMS ||x|| + reg * 2||w*||",
                 "D": "estimate: ||w0 - w*||", "noise": "estimate: RMS ||x|| / (2 sqrt(d batch))"},
        )

    def _newton(self) -> np.ndarray:
        w = np.zeros(self.d)
        for _ in range(100):
            m = self.Z @ w
            s = 0.5 * (1 - np.tanh(m / 2))  # sigmoid(-m), stable
            g = -(self.Z.T @ s) / self.n + self.reg * w
            if np.linalg.norm(g) < 1e-12:
                return w
            h = (self.X.T * (s * (1 - s))) @ self.X / self.n + self.reg * np.eye(self.d)
            w = w - np.linalg.solve(h, g)
        raise RuntimeError("Newton's method did not reach ||grad|| < 1e-12 in 100 steps")

    def F(self, W: np.ndarray) -> np.ndarray:  # noqa: N802
        m = W @ self.Zt
        return np.mean(np.logaddexp(0.0, -m), axis=-1) + 0.5 * self.reg * np.sum(W * W, axis=-1)

    def grad(self, W: np.ndarray) -> np.ndarray:
        s = 0.5 * (1 - np.tanh((W @ self.Zt) / 2))
        return -(s @ self.Z) / self.n + self.reg * W

    def draw(self, rng: np.random.Generator, seeds: int) -> np.ndarray:
        return rng.integers(0, self.n, size=(seeds, self.batch))

    def sample_grad(self, W: np.ndarray, idx: np.ndarray) -> np.ndarray:
        z = self.Z[idx]
        s = 0.5 * (1 - np.tanh(np.einsum("sbd,sd->sb", z, W) / 2))
        return -np.einsum("sb,sbd->sd", s, z) / self.batch + self.reg * W


class MatrixFactorization(Problem):
    """Embedding-like nonconvex problem: fit M = U* V*^T with both factors learned.

    Parameters w = (U, V) flattened, U: (rows, rank) like an embedding table, V: (cols,
    rank). F(w) = 1/2 mean_ij (U_i . V_j - M_ij)^2 over all entries; the stochastic
    gradient samples ``batch`` entries (i, j) per seed, so it touches only rows U_i and
    V_j (sparse, as a CTR batch touches a few embedding rows). M is exactly rank ``rank``:
    F* = 0 (exact); w* = (U*, V*) is one of the minimisers (any rotation is another).
    """

    name = "matrix_factorization"
    convex = False

    def __init__(self, rows: int = 30, cols: int = 20, rank: int = 3, batch: int = 8, seed: int = 0,
                 init_scale: float = 0.1):
        self.rows, self.cols = _count("rows", rows), _count("cols", cols)
        self.rank, self.batch = _count("rank", rank), _count("batch", batch)
        rng = np.random.default_rng(seed)
        u = rng.normal(size=(self.rows, self.rank)) / np.sqrt(self.rank) ** 0.5
        v = rng.normal(size=(self.cols, self.rank)) / np.sqrt(self.rank) ** 0.5
        self.M = u @ v.T
        self.d = (self.rows + self.cols) * self.rank
        self.w_star = np.concatenate([u.ravel(), v.ravel()])
        self.f_star = 0.0
        self.w0 = init_scale * rng.normal(size=self.d)
        self.constants = Constants(
            L=estimate_smoothness(self, np.stack([self.w_star, self.w0])), mu=0.0,
            G=float(np.linalg.norm(self.grad(self.w0[None])[0]) * 2),
            D=float(np.linalg.norm(self.w0 - self.w_star)), noise=float("nan"),
            how={"L": "estimate: largest Hessian eigenvalue at w* and w0 (power iteration)",
                 "mu": "not strongly convex (0)", "G": "estimate: 2 ||grad F(w0)||",
                 "D": "estimate: ||w0 - w*|| for this w*", "noise": "not Gaussian; not modelled"},
        )

    def _split(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = W.shape[0]
        k = self.rows * self.rank
        return W[:, :k].reshape(s, self.rows, self.rank), W[:, k:].reshape(s, self.cols, self.rank)

    def F(self, W: np.ndarray) -> np.ndarray:  # noqa: N802
        u, v = self._split(W)
        r = np.einsum("sik,sjk->sij", u, v) - self.M
        return 0.5 * np.mean(r * r, axis=(1, 2))

    def grad(self, W: np.ndarray) -> np.ndarray:
        u, v = self._split(W)
        r = (np.einsum("sik,sjk->sij", u, v) - self.M) / (self.rows * self.cols)
        gu = np.einsum("sij,sjk->sik", r, v)
        gv = np.einsum("sij,sik->sjk", r, u)
        return np.concatenate([gu.reshape(W.shape[0], -1), gv.reshape(W.shape[0], -1)], axis=1)

    def draw(self, rng: np.random.Generator, seeds: int) -> tuple[np.ndarray, np.ndarray]:
        return (rng.integers(0, self.rows, size=(seeds, self.batch)),
                rng.integers(0, self.cols, size=(seeds, self.batch)))

    def sample_grad(self, W: np.ndarray, entries: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        s = W.shape[0]
        u, v = self._split(W)
        i, j = entries
        seeds = np.arange(s)[:, None]
        ui, vj = u[seeds, i], v[seeds, j]  # (S, batch, rank)
        r = (np.sum(ui * vj, axis=-1) - self.M[i, j]) / self.batch  # (S, batch)
        gu = np.zeros_like(u)
        gv = np.zeros_like(v)
        np.add.at(gu, (seeds, i), r[..., None] * vj)
        np.add.at(gv, (seeds, j), r[..., None] * ui)
        return np.concatenate([gu.reshape(s, -1), gv.reshape(s, -1)], axis=1)


class TwoLayerNet(Problem):
    """Teacher-student regression: f(x) = a . tanh(B x), student of the teacher's shape.

    F(w) = 1/(2n) sum (f_w(x) - f*(x))^2 over a fixed sample; realisable, so F* = 0 (exact)
    and the teacher's weights are a minimiser w*. Minibatch gradients of ``batch`` samples.
    """

    name = "two_layer_net"
    convex = False

    def __init__(self, n: int = 200, inputs: int = 5, hidden: int = 8, batch: int = 8, seed: int = 0):
        self.n, self.inputs = _count("n", n), _count("inputs", inputs)
        self.hidden, self.batch = _count("hidden", hidden), _count("batch", batch)
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((self.n, self.inputs))
        b = rng.normal(size=(self.hidden, self.inputs)) / np.sqrt(self.inputs)
        a = rng.normal(size=self.hidden) / np.sqrt(self.hidden)
        self.w_star = np.concatenate([b.ravel(), a])
        self.d = self.w_star.size
        self.y = self._predict(self.w_star[None], self.X)[0]
        self.f_star = 0.0
        self.w0 = 0.5 * rng.normal(size=self.d) / np.sqrt(self.inputs)
        self.constants = Constants(
            L=estimate_smoothness(self, np.stack([self.w_star, self.w0])), mu=0.0,
            G=float(np.linalg.norm(self.grad(self.w0[None])[0]) * 2),
            D=float(np.linalg.norm(self.w0 - self.w_star)), noise=float("nan"),
            how={"L": "estimate: largest Hessian eigenvalue at w* and w0 (power iteration)",
                 "mu": "not strongly convex (0)",
                 "G": "estimate: 2 ||grad F(w0)||", "D": "estimate: ||w0 - w*||", "noise": "not modelled"},
        )

    def _split(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.hidden * self.inputs
        return W[:, :k].reshape(W.shape[0], self.hidden, self.inputs), W[:, k:]

    def _predict(self, W: np.ndarray, X: np.ndarray) -> np.ndarray:
        b, a = self._split(W)
        return np.einsum("sh,snh->sn", a, np.tanh(np.einsum("shi,ni->snh", b, X)))

    def _grad_on(self, W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of 1/(2m) sum (f(x) - y)^2 on X (m, in) or per-seed X (S, m, in)."""
        b, a = self._split(W)
        if X.ndim == 2:
            h = np.tanh(np.einsum("shi,ni->snh", b, X))
            r = (np.einsum("sh,snh->sn", a, h) - y) / X.shape[0]
            ga = np.einsum("sn,snh->sh", r, h)
            gb = np.einsum("sn,sh,snh,ni->shi", r, a, 1 - h * h, X)
        else:
            h = np.tanh(np.einsum("shi,sni->snh", b, X))
            r = (np.einsum("sh,snh->sn", a, h) - y) / X.shape[1]
            ga = np.einsum("sn,snh->sh", r, h)
            gb = np.einsum("sn,sh,snh,sni->shi", r, a, 1 - h * h, X)
        return np.concatenate([gb.reshape(W.shape[0], -1), ga], axis=1)

    def F(self, W: np.ndarray) -> np.ndarray:  # noqa: N802
        return 0.5 * np.mean((self._predict(W, self.X) - self.y) ** 2, axis=-1)

    def grad(self, W: np.ndarray) -> np.ndarray:
        return self._grad_on(W, self.X, self.y)

    def draw(self, rng: np.random.Generator, seeds: int) -> np.ndarray:
        return rng.integers(0, self.n, size=(seeds, self.batch))

    def sample_grad(self, W: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return self._grad_on(W, self.X[idx], self.y[idx])


class DoubleWell(Problem):
    """1-D double well F(w) = height (w^2 - 1)^2, minima at w = +-1 (F* = 0), barrier at 0.

    Stochastic gradient F'(w) + noise * N(0, 1). Used for stationary distributions: with a
    constant step SGD's stationary law concentrates at the minima as lr -> 0, SR's on a
    fixed grid does not (Li et al., 2017).
    """

    name = "double_well"
    convex = False

    def __init__(self, height: float = 1.0, noise: float = 1.0, w0: float = 0.0):
        self.height = _positive("height", height)
        self.noise = _positive("noise", noise, allow_zero=True)
        self.d = 1
        self.w_star = np.array([1.0])
        self.f_star = 0.0
        self.w0 = np.array([float(w0)])
        self.constants = Constants(
            L=float(8 * self.height), mu=0.0, G=float(np.sqrt((8 * self.height) ** 2 + self.noise**2)), D=2.0,
            noise=self.noise,
            how={"L": "bound on |w| <= 1.5: max |F''| = 12 h w^2 - 4 h -> rounded to 8 h (estimate)",
                 "mu": "nonconvex (0)", "G": "estimate on |w| <= 1.5", "D": "estimate", "noise": "exact"},
        )

    def F(self, W: np.ndarray) -> np.ndarray:  # noqa: N802
        return self.height * (W[:, 0] ** 2 - 1) ** 2

    def grad(self, W: np.ndarray) -> np.ndarray:
        return 4 * self.height * W * (W * W - 1)

    def draw(self, rng: np.random.Generator, seeds: int) -> np.ndarray | None:
        return self.noise * rng.standard_normal((seeds, 1)) if self.noise > 0 else None

    def sample_grad(self, W: np.ndarray, sample: np.ndarray | None) -> np.ndarray:
        g = self.grad(W)
        return g if sample is None else g + sample


def quadratic(d: int, mu: float, L: float, noise: float, seed: int = 0,  # noqa: N803
              w_star: np.ndarray | None = None) -> Quadratic:
    """Strongly convex quadratic; see :class:`Quadratic` (``w_star`` fixes the optimum instead of drawing it)."""
    return Quadratic(d, mu, L, noise, seed, w_star=w_star)


def least_squares(n: int, d: int, cond: float = 10.0, batch: int = 1, seed: int = 0) -> LeastSquares:
    """Least squares with minibatch gradients; see :class:`LeastSquares`."""
    return LeastSquares(n, d, cond, batch, seed)


def logistic(n: int, d: int, reg: float = 1e-2, seed: int = 0, batch: int = 1) -> Logistic:
    """L2-regularised logistic regression; see :class:`Logistic`."""
    return Logistic(n, d, reg, seed, batch)


def matrix_factorization(rows: int = 30, cols: int = 20, rank: int = 3, batch: int = 8,
                         seed: int = 0) -> MatrixFactorization:
    """Low-rank factorisation with sparse row updates; see :class:`MatrixFactorization`."""
    return MatrixFactorization(rows, cols, rank, batch, seed)


def two_layer_net(n: int = 200, inputs: int = 5, hidden: int = 8, batch: int = 8, seed: int = 0) -> TwoLayerNet:
    """Teacher-student two-layer tanh network; see :class:`TwoLayerNet`."""
    return TwoLayerNet(n, inputs, hidden, batch, seed)


def double_well(height: float = 1.0, noise: float = 1.0, w0: float = 0.0) -> DoubleWell:
    """1-D double well; see :class:`DoubleWell`."""
    return DoubleWell(height, noise, w0)
