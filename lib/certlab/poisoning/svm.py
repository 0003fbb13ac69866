"""Kernel learners on a precomputed (NTK) kernel: the bias-free hinge-loss SVM and kernel ridge
regression, the models whose label-flip robustness :mod:`certlab.poisoning` certifies.

Bias-free SVM (Sabanayagam et al., 2025, Eq. 2-3). With labels y in {-1, +1}^m the dual is

    min_a  1/2 a^T (y y^T * K) a - 1^T a     s.t.  0 <= a <= C,                (dual)

and the decision function is f(x) = sum_j y_j a_j K(x, x_j). We solve it in the
*signed* variables beta = y * a (so that the Hessian K is shared by every labelling):

    min_beta  1/2 beta^T K beta - y^T beta   s.t.  beta_j in [0, C] if y_j = +1,
                                                    beta_j in [-C, 0] if y_j = -1,

f(x) = K(x, X) beta. The primal objective of the same problem is
P(w) = 1/2 ||w||^2 + C sum_i max(0, 1 - y_i f(x_i)) with w = sum_j beta_j phi(x_j), so the
duality gap ``gap = P - D >= 0`` is computable from beta alone, and because P is 1-strongly
convex in w, ``||w - w*|| <= sqrt(2 gap)`` and |f(x) - f*(x)| <= sqrt(2 gap K(x, x)): the gap
is a rigorous accuracy certificate of every decision value. (f is unique even when K is only
positive semi-definite and beta is not.)

Why our own solver: scipy has no box-constrained QP solver that reaches KKT residuals of
1e-10 (``minimize(method="L-BFGS-B")`` stops around 1e-6 to 1e-8, ``lsq_linear`` needs a
factor of K and a least-squares form), ortools has no dense QP solver, and the certificates
need *many* small problems solved at once (enumeration re-solves up to ~10^6 labellings).
:func:`solve_svm_dual_batch` is a batched projected Newton method (Bertsekas, 1982) with
epsilon-active sets and Armijo search along the projection arc; the Newton systems on the
free variables are solved for the whole batch with one ``numpy.linalg.solve`` call and a
tiny Levenberg-Marquardt shift so that singular (low-rank) kernels such as the linear SGC
NTK are handled; the iteration stops at a projected-gradient (KKT) residual of ``tol``
(or at the float64 rounding floor of :func:`kkt_tolerance` where that is larger, i.e. at
very large C). Rows the Newton iteration leaves unconverged (it can zig-zag along the
projection arc) are finished by an exact primal active-set method (Nocedal & Wright,
Algorithm 16.3), and every row is polished by Newton steps on its face with the gradient in
extended precision. A row that still misses the tolerance raises (or, with
``on_failure="nan"``, comes back as NaN, which the certificates count as "changed").

Accuracy of the decision values: :func:`dual_error_radius` bounds ||w - w*|| rigorously
(duality-gap argument on a box shrunk by complementary slackness, and g / sqrt(lambda_min)
for positive definite K, with the rounding of the long-double gradient included), so
|f(x) - f*(x)| <= radius * sqrt(k^T K^+ k), typically 1e-14 here. Tolerances are relative to
:func:`score_scale`, a bound on |f| for every labelling that does not grow with C once K is
positive definite (:func:`svm_norm_bound`), so they stay meaningful at C = 1e9.

Kernel ridge regression: f(x) = k(x)^T (K + ridge I)^-1 Y with Y = y in {-1, +1} (binary) or
one-hot (multi-class), linear in the training labels.

Multi-class: one-vs-rest with the same C (class c against the rest, labels +1 / -1), the
prediction is the argmax of the c decision values with ties going to the smallest class.
Binary predictions are +1 if f > 0 and -1 otherwise (class index 0 <-> -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from certlab.poisoning.validation import (check_positive_semidefinite, validate_kernel_pair,
                                          validate_labels, validate_model_parameters)

__all__ = [
    "SVMDualSolution",
    "KernelSVM",
    "KernelRidge",
    "solve_svm_dual_batch",
    "solve_svm_dual",
    "svm_duality_gap",
    "kkt_tolerance",
    "ovr_labels",
    "fit_svm",
    "fit_krr",
    "krr_weights",
    "select_C_cv",
    "stratified_folds",
    "decision_scores",
    "predict_from_scores",
    "prediction_margins",
    "score_scale",
    "svm_norm_bound",
    "kernel_projection_norms",
    "dual_error_radius",
    "safe_min_eigenvalue",
    "DEFAULT_C_GRID",
    "TIE_RTOL",
]

#: Relative tolerance for "the prediction changed": a perturbed prediction counts as changed
#: when the clean class's margin drops to <= TIE_RTOL * score_scale (ties count as changed,
#: which can only make a certificate smaller, never wrongly larger).
TIE_RTOL = 1e-9

#: The C grid of the paper's 4-fold cross-validation ("0.001, ..., 10").
DEFAULT_C_GRID: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075,
                                     0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

#: Default KKT (projected-gradient) residual at which the dual solver stops.
DEFAULT_TOL = 1e-10


# --------------------------------------------------------------------------------------------
# Batched dual solver
# --------------------------------------------------------------------------------------------

def _box(Y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    lo = np.where(Y > 0, 0.0, -C)
    hi = np.where(Y > 0, C, 0.0)
    return lo, hi


def _objective(beta: np.ndarray, Kbeta: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return 0.5 * np.einsum("bi,bi->b", beta, Kbeta) - np.einsum("bi,bi->b", Y, beta)


def svm_duality_gap(K: np.ndarray, Y: np.ndarray, beta: np.ndarray, C: float) -> np.ndarray:
    """Primal minus dual objective of the bias-free SVM at the signed dual point ``beta``.

    Args:
        K: (m, m) kernel; Y: (B, m) labels in {-1, +1}; beta: (B, m) signed dual variables
        inside the box (beta * Y in [0, C]); C: box bound.

    Returns:
        (B,) gaps P(w_beta) - D(|beta|) >= 0 (up to rounding); zero exactly at the optimum.
    """
    Kb = beta @ K
    quad = np.einsum("bi,bi->b", beta, Kb)
    hinge = np.maximum(0.0, 1.0 - Y * Kb).sum(axis=1)
    return quad + C * hinge - np.abs(beta).sum(axis=1)


def kkt_tolerance(K: np.ndarray, beta: np.ndarray, tol: float = DEFAULT_TOL) -> np.ndarray:
    """(B,) KKT residual each solve must reach: ``max(tol, floor)`` with the rounding floor
    64 m eps (1 + max_i sum_j |K_ij| |beta_j|), the accuracy with which float64 evaluates the
    gradient K beta - y at all. At moderate C the floor is far below 1e-10 and ``tol``
    decides; at very large C (|beta| large) the floor keeps the criterion meaningful instead
    of unreachable. The decision values are then certified by the duality gap
    (:func:`decision_value_error`), not by this residual."""
    beta = np.atleast_2d(beta)
    m = K.shape[0]
    mag = np.max(np.abs(beta) @ np.abs(K), axis=1)
    return np.maximum(tol, 64.0 * m * np.finfo(np.float64).eps * (1.0 + mag))


def solve_svm_dual_batch(K: np.ndarray, Y: np.ndarray, C: float, *, tol: float = DEFAULT_TOL,
                         max_iter: int = 500, beta0: np.ndarray | None = None,
                         chunk_size: int | None = None,
                         on_failure: str = "raise") -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray]:
    """Solve many bias-free SVM duals that share the kernel K (batched projected Newton, with
    an exact active-set method for the rows it leaves unconverged).

    Args:
        K: (m, m) symmetric positive semi-definite kernel (not re-validated here).
        Y: (B, m) labels in {-1, +1}, one labelling per row.
        C: box bound > 0.
        tol: stop when max_i |beta_i - P(beta_i - grad_i)| <= tol (the KKT residual of the
            signed dual; gradient entries are of order 1 because labels are +-1), or at the
            float64 rounding floor of :func:`kkt_tolerance` where that is larger (large C).
        max_iter: projected-Newton iterations at most.
        beta0: optional (B, m) warm start (projected onto each box).
        chunk_size: rows per batched linear solve (default: about 32 MB of Newton matrices).
        on_failure: "raise" (default) or "nan": what to do with a row that neither method
            brings to the tolerance; with "nan" its beta row is NaN (the caller must treat
            it as undecided) and its residual is reported.

    Returns:
        ``(beta, kkt_residual, gap)``: (B, m) signed dual solutions (f(x) = K(x, X) @ beta),
        (B,) final KKT residuals and (B,) duality gaps.

    Raises:
        RuntimeError: with ``on_failure="raise"``, if some problem does not reach the
            tolerance (never returns an unconverged solution silently).
    """
    if on_failure not in ("raise", "nan"):
        raise ValueError(f"on_failure must be 'raise' or 'nan', got {on_failure!r}")
    K = np.asarray(K, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[None, :]
    B, m = Y.shape
    if chunk_size is None:
        chunk_size = max(1, int(4e6 // (m * m)))
    beta_out = np.empty((B, m))
    res_out = np.empty(B)
    for start in range(0, B, chunk_size):
        stop = min(B, start + chunk_size)
        b0 = None if beta0 is None else np.asarray(beta0, dtype=np.float64)[start:stop]
        beta_out[start:stop], res_out[start:stop] = _projected_newton(
            K, Y[start:stop], float(C), tol, max_iter, b0)
    # The epsilon-active-set Newton iteration can stall (zig-zagging along the projection arc,
    # e.g. Cora-MLb GCN NTK, m = 40, C = 0.075 with five flipped labels); such rows are solved
    # by the exact primal active-set method, started from the Newton point.
    failed = np.flatnonzero(~(res_out <= kkt_tolerance(K, beta_out, tol)))
    lo, hi = _box(Y, float(C))
    for i in failed:
        beta_out[i] = _active_set_box_qp(K, Y[i], lo[i], hi[i], beta_out[i])
        res_out[i] = _kkt_residual(K, Y[i:i + 1], beta_out[i:i + 1], float(C))[0]
    _polish(K, Y, beta_out, res_out, lo, hi)
    failed = ~(res_out <= kkt_tolerance(K, beta_out, tol))
    if np.any(failed):
        msg = (f"SVM dual solver did not reach KKT residual {tol:g} (projected Newton, "
               f"{max_iter} iterations, then an exact active-set method) for "
               f"{int(np.sum(failed))} of {B} problems (worst residual "
               f"{float(np.max(res_out[failed])):.3g})")
        if on_failure == "raise":
            raise RuntimeError(msg)
        beta_out[failed] = np.nan
    gap = svm_duality_gap(K, Y, beta_out, float(C))
    return beta_out, res_out, gap


def _gradient_ld(K: np.ndarray, Y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """K beta - y evaluated in extended precision (long double), returned as float64."""
    return (beta.astype(np.longdouble) @ K.astype(np.longdouble) - Y).astype(np.float64)


def _polish(K: np.ndarray, Y: np.ndarray, beta: np.ndarray, residual: np.ndarray,
            lo: np.ndarray, hi: np.ndarray, steps: int = 1) -> None:
    """In place: Newton steps on the current faces (free = strictly inside the box) with the
    gradient in extended precision, so that the free gradient reaches the float64 rounding
    level and :func:`dual_error_radius` certifies the decision values to about 1e-8. A row
    keeps a step only if it stays inside the box and its KKT residual does not grow."""
    B, m = beta.shape
    if B == 0:
        return
    diagK = np.diag(K)
    shift = 1e-14 * max(float(np.max(np.abs(diagK))), 1e-300)
    chunk = max(1, int(4e6 // (m * m)))
    for start in range(0, B, chunk):
        sl = slice(start, min(B, start + chunk))
        for _ in range(steps):
            b = beta[sl]
            ok = np.all(np.isfinite(b), axis=1)
            g = _gradient_ld(K, Y[sl], np.nan_to_num(b))
            free = (b > lo[sl]) & (b < hi[sl]) & ok[:, None]
            A = np.where(free[:, :, None] & free[:, None, :], K[None], 0.0)
            A[:, np.arange(m), np.arange(m)] = np.where(free, diagK + shift, 1.0)
            d = np.linalg.solve(A, -np.where(free, g, 0.0)[:, :, None])[:, :, 0]
            cand = b + d
            inside = np.all((cand >= lo[sl]) & (cand <= hi[sl]), axis=1) & ok
            new_res = np.max(np.abs(cand - np.clip(cand - _gradient_ld(K, Y[sl], cand),
                                                   lo[sl], hi[sl])), axis=1)
            take = inside & (new_res <= residual[sl])
            beta[sl] = np.where(take[:, None], cand, b)
            residual[sl] = np.where(take, new_res, residual[sl])


def _kkt_residual(K: np.ndarray, Y: np.ndarray, beta: np.ndarray, C: float) -> np.ndarray:
    lo, hi = _box(Y, C)
    g = beta @ K - Y
    return np.max(np.abs(beta - np.clip(beta - g, lo, hi)), axis=1)


def _active_set_box_qp(K: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       beta0: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """min 1/2 b^T K b - y^T b over lo <= b <= hi by the primal active-set method.

    Nocedal & Wright (2006), Algorithm 16.3, for a box: the free variables are minimised
    exactly on their face (eigen-decomposition of K_FF; on a singular face a null-space
    direction of descent is followed to the nearest bound), a blocking bound joins the
    working set, and the bound with the most negative multiplier leaves it. Each face
    minimum is polished by iterative refinement with extended-precision residuals. The
    objective decreases strictly on non-degenerate steps, so the method is finite; the
    caller checks the KKT residual of the result (never trusted blindly).
    """
    m = y.shape[0]
    max_iter = 20 * m + 100 if max_iter is None else max_iter
    b = np.clip(np.where(np.isfinite(beta0), beta0, 0.0), lo, hi)
    at_lo, at_hi = b <= lo, b >= hi
    fixed = at_lo | at_hi
    Kl = K.astype(np.longdouble)
    scale = max(float(np.max(np.abs(np.diag(K)))), 1e-300)
    for _ in range(max_iter):
        F = np.flatnonzero(~fixed)
        g = K @ b - y
        if F.size:
            KFF = K[np.ix_(F, F)]
            lam, V = np.linalg.eigh(KFF)
            null = lam <= 1e-12 * max(float(lam[-1]), scale)
            gF = g[F]
            n_comp = V[:, null] @ (V[:, null].T @ gF)
            if np.linalg.norm(n_comp) > 1e-9 * (1.0 + np.linalg.norm(gF)):
                d = -n_comp  # zero curvature, descent: go to the nearest bound
                alpha_max = np.inf
            else:
                rng_ = ~null
                d = -V[:, rng_] @ ((V[:, rng_].T @ gF) / lam[rng_])
                d = _refine_face_step(Kl, K, b, y, F, d, V[:, rng_], lam[rng_])
                alpha_max = 1.0
            with np.errstate(divide="ignore", invalid="ignore"):
                to_hi = np.where(d > 0, (hi[F] - b[F]) / d, np.inf)
                to_lo = np.where(d < 0, (lo[F] - b[F]) / d, np.inf)
            steps = np.minimum(to_hi, to_lo)
            j = int(np.argmin(steps))
            alpha = min(alpha_max, float(steps[j]))
            if not np.isfinite(alpha):  # pragma: no cover - a box is bounded
                break
            b[F] = b[F] + alpha * d
            if alpha < alpha_max:  # blocked: the bound joins the working set
                i = F[j]
                b[i] = hi[i] if d[j] > 0 else lo[i]
                fixed[i] = True
                continue
            b[F] = np.clip(b[F], lo[F], hi[F])
            g = K @ b - y
        # face minimum: release the fixed variable with the most violated multiplier
        viol = np.where(fixed & (b <= lo), -g, 0.0) + np.where(fixed & (b >= hi), g, 0.0)
        viol = np.where(fixed, np.maximum(viol, 0.0), 0.0)
        i = int(np.argmax(viol))
        if viol[i] <= 1e-14 * (1.0 + float(np.max(np.abs(b) @ np.abs(K)))):
            break
        fixed[i] = False
    return b


def _refine_face_step(Kl: np.ndarray, K: np.ndarray, b: np.ndarray, y: np.ndarray,
                      F: np.ndarray, d: np.ndarray, V: np.ndarray,
                      lam: np.ndarray) -> np.ndarray:
    """Two steps of iterative refinement of the face Newton step d (K_FF d = -g_F), with
    the gradient at b + d evaluated in extended precision (long double)."""
    bl = b.astype(np.longdouble)
    yl = y.astype(np.longdouble)
    for _ in range(2):
        x = bl.copy()
        x[F] += d
        r = (Kl @ x - yl)[F].astype(np.float64)
        d = d - V @ ((V.T @ r) / lam)
    return d


def _projected_newton(K: np.ndarray, Y: np.ndarray, C: float, tol: float, max_iter: int,
                      beta0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    B, m = Y.shape
    lo, hi = _box(Y, C)
    beta = np.zeros((B, m)) if beta0 is None else np.clip(beta0, lo, hi)
    diagK = np.clip(np.diag(K).copy(), 1e-300, None)
    scale = float(np.max(diagK))
    shift = 1e-13 * max(scale, 1e-300)  # Levenberg-Marquardt shift for singular K_FF
    eps0 = 0.1 * C
    sigma = 1e-4
    residual = np.full(B, np.inf)
    active_rows = np.arange(B)
    for _ in range(max_iter):
        if active_rows.size == 0:
            break
        b = beta[active_rows]
        y = Y[active_rows]
        l, h = lo[active_rows], hi[active_rows]
        Kb = b @ K
        g = Kb - y
        res = np.max(np.abs(b - np.clip(b - g, l, h)), axis=1)
        residual[active_rows] = res
        done = res <= kkt_tolerance(K, b, tol)
        if np.all(done):
            active_rows = active_rows[:0]
            break
        keep = ~done
        active_rows = active_rows[keep]
        b, y, l, h, Kb, g, res = b[keep], y[keep], l[keep], h[keep], Kb[keep], g[keep], res[keep]
        eps = np.minimum(eps0, res)[:, None]
        fixed = ((b <= l + eps) & (g > 0)) | ((b >= h - eps) & (g < 0))
        free = ~fixed
        ff = free[:, :, None] & free[:, None, :]
        A = np.where(ff, K[None, :, :], 0.0)
        diag = np.where(free, diagK + shift, diagK)
        A[:, np.arange(m), np.arange(m)] = diag
        d = np.linalg.solve(A, -g[:, :, None])[:, :, 0]
        phi0 = _objective(b, Kb, y)
        gd_free = np.einsum("bi,bi->b", np.where(free, g, 0.0), d)
        step = np.ones(b.shape[0])
        accepted = np.zeros(b.shape[0], dtype=bool)
        new_b = b.copy()
        for _ls in range(60):
            todo = ~accepted
            if not np.any(todo):
                break
            t = step[todo][:, None]
            cand = np.clip(b[todo] + t * d[todo], l[todo], h[todo])
            Kc = cand @ K
            phi = _objective(cand, Kc, y[todo])
            fixed_t = fixed[todo]
            decrease = (t[:, 0] * gd_free[todo]
                        + np.einsum("bi,bi->b", np.where(fixed_t, g[todo], 0.0),
                                    cand - b[todo]))
            ok = phi <= phi0[todo] + sigma * decrease + 1e-15 * np.abs(phi0[todo])
            idx = np.flatnonzero(todo)
            good = idx[ok]
            new_b[good] = cand[ok]
            accepted[good] = True
            step[idx[~ok]] *= 0.5
        beta[active_rows] = new_b
        # problems whose line search failed keep their point and are caught below
    if active_rows.size:
        b = beta[active_rows]
        res = np.max(np.abs(b - np.clip(b - (b @ K - Y[active_rows]), lo[active_rows],
                                        hi[active_rows])), axis=1)
        residual[active_rows] = res
    return beta, residual  # the caller checks residual <= tol (never returned unchecked)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SVMDualSolution:
    """One solved bias-free SVM dual.

    Attributes:
        beta: (m,) signed dual variables y * a; f(x) = K(x, X) @ beta.
        alpha: (m,) dual variables a = |beta| in [0, C].
        kkt_residual: max-norm projected-gradient residual at the returned point.
        duality_gap: P - D at the returned point (>= 0; bounds the decision-value error).
    """

    beta: np.ndarray
    alpha: np.ndarray
    kkt_residual: float
    duality_gap: float


def solve_svm_dual(K_train: Any, y: Any, C: float, *, tol: float = DEFAULT_TOL,
                   max_iter: int = 500) -> SVMDualSolution:
    """Solve one bias-free SVM dual (Eq. dual above) to KKT residual ``tol``.

    Args:
        K_train: (m, m) symmetric kernel. y: (m,) labels in {-1, +1} (or {0, 1}). C: > 0.
    """
    K_train, _ = validate_kernel_pair(K_train, np.zeros((1, np.shape(K_train)[-1])))
    check_positive_semidefinite(K_train)
    yy, n_classes = validate_labels(y, K_train.shape[0])
    if n_classes != 2:
        raise ValueError("solve_svm_dual needs binary labels; use fit_svm for multi-class")
    validate_model_parameters("svm", C, None)
    beta, res, gap = solve_svm_dual_batch(K_train, yy[None, :].astype(float), float(C),
                                          tol=tol, max_iter=max_iter)
    return SVMDualSolution(beta=beta[0], alpha=np.abs(beta[0]), kkt_residual=float(res[0]),
                           duality_gap=float(gap[0]))


def ovr_labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    """One-vs-rest +-1 label rows: (1, m) for binary (+-1 input), (c, m) for multi-class."""
    y = np.asarray(y)
    if n_classes == 2:
        return y[None, :].astype(np.float64)
    return np.where(y[None, :] == np.arange(n_classes)[:, None], 1.0, -1.0)


@dataclass(frozen=True)
class KernelSVM:
    """A fitted bias-free (one-vs-rest) kernel SVM.

    Attributes:
        beta: (m,) signed dual variables (binary) or (c, m), one row per one-vs-rest model.
        C: the box bound. n_classes: 2 (binary, labels +-1) or c >= 3.
        kkt_residual, duality_gap: worst over the one-vs-rest problems.
    """

    beta: np.ndarray
    C: float
    n_classes: int
    kkt_residual: float
    duality_gap: float

    def decision_function(self, K_test: Any) -> np.ndarray:
        """Decision values: (t,) for binary, (t, c) for multi-class; K_test is (t, m)."""
        K_test = np.asarray(K_test, dtype=np.float64)
        if K_test.ndim != 2 or K_test.shape[1] != self.beta.shape[-1]:
            raise ValueError(f"K_test must have shape (t, {self.beta.shape[-1]}), got "
                             f"{K_test.shape}")
        return K_test @ self.beta.T

    def predict(self, K_test: Any) -> np.ndarray:
        """Predicted labels: {-1, +1} for binary, 0..c-1 for multi-class."""
        return predict_from_scores(self.decision_function(K_test), self.n_classes)


@dataclass(frozen=True)
class KernelRidge:
    """Fitted kernel ridge regression f(x) = k(x)^T (K + ridge I)^-1 Y.

    Attributes:
        coef: (m,) = (K + ridge I)^-1 y for binary (+-1 labels), (m, c) with one-hot Y.
    """

    coef: np.ndarray
    ridge: float
    n_classes: int

    def decision_function(self, K_test: Any) -> np.ndarray:
        """Decision values: (t,) for binary, (t, c) for multi-class."""
        K_test = np.asarray(K_test, dtype=np.float64)
        if K_test.ndim != 2 or K_test.shape[1] != self.coef.shape[0]:
            raise ValueError(f"K_test must have shape (t, {self.coef.shape[0]}), got "
                             f"{K_test.shape}")
        return K_test @ self.coef

    def predict(self, K_test: Any) -> np.ndarray:
        """Predicted labels: {-1, +1} for binary, 0..c-1 for multi-class."""
        return predict_from_scores(self.decision_function(K_test), self.n_classes)


def predict_from_scores(scores: np.ndarray, n_classes: int) -> np.ndarray:
    """Binary (t,) scores -> +1 where score > 0 else -1; (t, c) -> argmax (smallest on ties)."""
    scores = np.asarray(scores)
    if n_classes == 2:
        return np.where(scores > 0, 1, -1).astype(np.int64)
    return np.argmax(scores, axis=-1).astype(np.int64)


def prediction_margins(scores: np.ndarray, clean_prediction: np.ndarray,
                       n_classes: int) -> np.ndarray:
    """Margin of the clean prediction under (possibly perturbed) decision values.

    Args:
        scores: (..., t) binary decision values or (..., t, c) multi-class ones.
        clean_prediction: (t,) clean predictions ({-1, +1} binary, 0..c-1 multi-class).

    Returns:
        (..., t) margins: y_hat * f (binary) or f_{y_hat} - max_{r != y_hat} f_r (multi-class).
        The prediction is kept iff the margin is > 0 (up to the tie tolerance).
    """
    scores = np.asarray(scores, dtype=np.float64)
    clean_prediction = np.asarray(clean_prediction)
    if n_classes == 2:
        return scores * clean_prediction
    own = np.take_along_axis(scores, np.broadcast_to(
        clean_prediction[..., None], scores.shape[:-1] + (1,)), axis=-1)[..., 0]
    rivals = scores.copy()
    np.put_along_axis(rivals, np.broadcast_to(clean_prediction[..., None],
                                              scores.shape[:-1] + (1,)), -np.inf, axis=-1)
    return own - rivals.max(axis=-1)


#: Kernels with smallest eigenvalue below this fraction of the largest are treated as
#: singular by :func:`svm_norm_bound` (then only the bound ||w||^2 <= 2 C m is used).
COND_LIMIT = 1e8


def kernel_projection_norms(K_train: np.ndarray, K_test: np.ndarray) -> np.ndarray:
    """(t,) q_i = k_i^T K^+ k_i, the squared norm of the projection of phi(x_i) onto the span
    of the training features (k_i = K_test[i]); |f(x_i)| <= sqrt(q_i) ||w|| for every model
    f = <w, phi> with w in that span (Cauchy-Schwarz in the K inner product). Eigenvalues
    below 1e-12 of the largest are dropped (pseudo-inverse)."""
    lam, V = np.linalg.eigh(K_train)
    keep = lam > 1e-12 * max(float(lam[-1]), 1e-300)
    proj = K_test @ V[:, keep]
    return np.einsum("tk,tk->t", proj / lam[keep], proj)


def svm_norm_bound(K_train: np.ndarray, C: float) -> float:
    """Upper bound on ||w|| of the bias-free SVM for EVERY labelling: ||w||^2 <= 2 P* with
    P* <= P(0) = C m, and, for a positive definite K (smallest eigenvalue lambda > 0, cond
    <= COND_LIMIT), P* <= P(interpolant) = y^T K^-1 y / 2 <= m / (2 lambda). The second
    bound does not grow with C (hard-margin regime)."""
    m = K_train.shape[0]
    bound = 2.0 * C * m
    lam_max = max(float(np.linalg.eigvalsh(K_train)[-1]), 1e-300)
    lam_safe = safe_min_eigenvalue(K_train)
    if lam_safe > lam_max / COND_LIMIT:
        bound = min(bound, m / lam_safe)
    return float(np.sqrt(bound))


def score_scale(K_test: np.ndarray, *, model: str, C: float | None = None,
                weights: np.ndarray | None = None,
                K_train: np.ndarray | None = None) -> np.ndarray:
    """Largest possible |decision value| per test row under ANY labelling, shape (t,).

    SVM: |f(x)| <= C sum_j |K(x, x_j)|, and, when ``K_train`` is given, also
    |f(x)| <= sqrt(k^T K^+ k) * :func:`svm_norm_bound` (with a 1.001 safety factor for
    rounding; the bound that does not grow with C, so tolerances relative to it stay
    meaningful at large C). KRR: |f(x)| <= sum_j |W_xj| with W = K_test (K + ridge I)^-1
    (``weights``). Used to make every tolerance relative, and by the MILP as a big-M.
    """
    if model == "svm":
        s = C * np.abs(K_test).sum(axis=1)
        if K_train is not None:
            q = kernel_projection_norms(K_train, K_test)
            s = np.minimum(s, 1.001 * np.sqrt(np.maximum(q, 0.0)) * svm_norm_bound(K_train, C))
    else:
        s = np.abs(weights).sum(axis=1)
    return np.maximum(s, 1e-300)


def safe_min_eigenvalue(K: np.ndarray) -> float:
    """A rigorous lower bound on the smallest eigenvalue of the symmetric K (the computed one
    minus 8 m eps max |eigenvalue|, above LAPACK's backward error); <= 0 when K may be
    singular."""
    lam = np.linalg.eigvalsh(K)
    lam_max = max(float(np.max(np.abs(lam))), 1e-300)
    return float(lam[0]) - 8.0 * K.shape[0] * np.finfo(np.float64).eps * lam_max


def dual_error_radius(K: np.ndarray, Y: np.ndarray, beta: np.ndarray, C: float,
                      lam_min: float | None = None) -> np.ndarray:
    """(B,) rigorous bound r >= ||w - w*|| (feature space) for feasible signed duals ``beta``.

    With g = K beta - y and any optimum beta*, ||w - w*||^2 = (beta - beta*)^T K
    (beta - beta*) <= g^T (beta - beta*) (optimality of beta*), and beta* lies in the box
    intersected with |beta*_i| <= sum_j |beta*_j| = ||w*||^2 + C sum xi* <= 2 P(w_beta)
    (complementary slackness), so the maximum of g^T (beta - z) over that smaller box bounds
    it, also at very large C where the box itself is huge. With a positive lower bound
    ``lam_min`` on the smallest eigenvalue of K (:func:`safe_min_eigenvalue`) a bound linear
    in g holds too: entries at a bound whose gradient provably points outward contribute
    <= 0, the others at most |g_i| |d_i|, so d^T K d <= ||g_U|| ||d|| <= ||g_U||
    sqrt(d^T K d / lam_min), i.e. ||w - w*|| <= ||g_U|| / sqrt(lam_min); the smaller bound
    is returned. g is evaluated in long double and
    its rounding is included (4 m eps_ld (|K| |beta| + 1) per entry, plus the float64
    rounding of the stored result). Then |f(x) - f*(x)| <= r sqrt(k^T K^+ k).
    """
    beta = np.atleast_2d(beta)
    Y = np.atleast_2d(Y)
    m = K.shape[0]
    eps = float(np.finfo(np.longdouble).eps)
    g = _gradient_ld(K, Y, beta)  # extended precision: the bound is limited by its rounding
    Kb = g + Y
    primal = 0.5 * np.einsum("bi,bi->b", beta, Kb) + C * np.maximum(0.0, -Y * g).sum(axis=1)
    A = (2.0 * primal * (1.0 + 1e-9) + 1e-300)[:, None]
    lo, hi = _box(Y, C)
    lo, hi = np.maximum(lo, -A), np.minimum(hi, A)
    delta = ((4.0 * m * eps) * (np.abs(beta) @ np.abs(K) + 1.0)
             + np.finfo(np.float64).eps * np.abs(g))
    term = np.maximum(g * (beta - lo), g * (beta - hi)) + delta * (hi - lo)
    radius = np.sqrt(np.maximum(term.sum(axis=1), 0.0))
    if lam_min is not None and lam_min > 0:
        lo_box, hi_box = _box(Y, C)
        outward = (((beta <= lo_box) & (g - delta >= 0))
                   | ((beta >= hi_box) & (g + delta <= 0)))
        g_u = np.where(outward, 0.0, np.abs(g) + delta)
        radius = np.minimum(radius, np.linalg.norm(g_u, axis=1) / np.sqrt(lam_min)
                            * (1.0 + 1e-12))
    return radius


def fit_svm(K_train: Any, y_train: Any, C: float, *, tol: float = DEFAULT_TOL) -> KernelSVM:
    """Fit the bias-free kernel SVM (binary) or its one-vs-rest extension (multi-class).

    Args:
        K_train: (m, m) symmetric positive semi-definite kernel. y_train: (m,) labels
            ({-1, +1}, {0, 1} or 0..c-1). C: box bound > 0. tol: KKT residual of every dual
            solve.

    Raises:
        ValueError: K_train not symmetric or not positive semi-definite (smallest eigenvalue
            below -1e-9 times the largest |eigenvalue|; the dual is then not convex and is
            refused up front), bad labels or C.
    """
    K_train, _ = validate_kernel_pair(K_train, np.zeros((1, np.shape(K_train)[-1])))
    check_positive_semidefinite(K_train)
    y, n_classes = validate_labels(y_train, K_train.shape[0])
    _, C, _ = validate_model_parameters("svm", C, None)
    Y = ovr_labels(y, n_classes)
    beta, res, gap = solve_svm_dual_batch(K_train, Y, C, tol=tol)
    return KernelSVM(beta=beta[0] if n_classes == 2 else beta, C=C, n_classes=n_classes,
                     kkt_residual=float(res.max()), duality_gap=float(gap.max()))


def krr_weights(K_train: np.ndarray, K_test: np.ndarray, ridge: float) -> np.ndarray:
    """W = K_test (K_train + ridge I)^-1, shape (t, m): KRR decision values are W @ Y."""
    m = K_train.shape[0]
    A = K_train + ridge * np.eye(m)
    return np.linalg.solve(A, K_test.T).T  # A symmetric


def fit_krr(K_train: Any, y_train: Any, ridge: float) -> KernelRidge:
    """Fit kernel ridge regression with +-1 targets (binary) or one-hot targets (multi-class)."""
    K_train, _ = validate_kernel_pair(K_train, np.zeros((1, np.shape(K_train)[-1])))
    y, n_classes = validate_labels(y_train, K_train.shape[0])
    _, _, ridge = validate_model_parameters("krr", None, ridge)
    targets = y.astype(np.float64) if n_classes == 2 else np.eye(n_classes)[y]
    coef = np.linalg.solve(K_train + ridge * np.eye(K_train.shape[0]), targets)
    return KernelRidge(coef=coef, ridge=ridge, n_classes=n_classes)


def decision_scores(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray, n_classes: int, *,
                    model: str, C: float | None = None,
                    ridge: float | None = None) -> np.ndarray:
    """Clean decision values for already validated inputs: (t,) binary, (t, c) multi-class."""
    if model == "svm":
        return fit_svm(K_train, y, C).decision_function(K_test)
    return fit_krr(K_train, y, ridge).decision_function(K_test)


# --------------------------------------------------------------------------------------------
# Cross-validation of C
# --------------------------------------------------------------------------------------------

def stratified_folds(y: Any, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Split indices into ``n_folds`` folds with (as nearly as possible) equal class shares.

    Each class's indices are shuffled with ``rng`` and dealt round-robin to the folds.
    """
    y = np.asarray(y)
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)):
        raise TypeError(f"n_folds must be an integer, got {n_folds!r}")
    if not 2 <= n_folds <= y.shape[0]:
        raise ValueError(f"n_folds must lie in [2, m = {y.shape[0]}], got {n_folds}")
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    offset = 0
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        for k, i in enumerate(idx):
            folds[(k + offset) % n_folds].append(int(i))
        offset += len(idx)
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


def select_C_cv(K_train: Any, y_train: Any, *, C_grid: Sequence[float] = DEFAULT_C_GRID,
                n_folds: int = 4, seed: int = 0) -> tuple[float, np.ndarray]:
    """Choose the SVM's C by stratified k-fold cross-validation (the paper uses 4 folds).

    Args:
        K_train: (m, m) kernel of the labeled nodes; y_train: (m,) labels.
        C_grid: candidate values (each > 0). n_folds: folds. seed: fold shuffling seed.

    Returns:
        ``(best_C, mean_accuracy)`` where ``mean_accuracy`` has one entry per grid value; ties
        go to the smallest C (the most regularised model).
    """
    K_train, _ = validate_kernel_pair(K_train, np.zeros((1, np.shape(K_train)[-1])))
    check_positive_semidefinite(K_train)
    y, n_classes = validate_labels(y_train, K_train.shape[0])
    grid = [validate_model_parameters("svm", c, None)[1] for c in C_grid]
    if not grid:
        raise ValueError("C_grid must contain at least one value")
    folds = stratified_folds(y, n_folds, np.random.default_rng(seed))
    acc = np.zeros(len(grid))
    for fold in folds:
        train = np.setdiff1d(np.arange(y.shape[0]), fold)
        Ktr = K_train[np.ix_(train, train)]
        Kva = K_train[np.ix_(fold, train)]
        for g, C in enumerate(grid):
            model = KernelSVM(*_fit_raw(Ktr, y[train], n_classes, C))
            acc[g] += np.mean(model.predict(Kva) == y[fold]) / len(folds)
    order = sorted(range(len(grid)), key=lambda g: (-round(acc[g], 12), grid[g]))
    return float(grid[order[0]]), acc


def _fit_raw(K: np.ndarray, y: np.ndarray, n_classes: int, C: float):
    """Fit without re-validation (labels of a CV fold may miss a class)."""
    Y = ovr_labels(y, n_classes)
    beta, res, gap = solve_svm_dual_batch(K, Y, C)
    return (beta[0] if n_classes == 2 else beta, C, n_classes, float(res.max()),
            float(gap.max()))
