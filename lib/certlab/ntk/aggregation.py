"""Aggregation ("diffusion") operators S of the GNNs whose NTKs :mod:`certlab.ntk.gnn` computes.

Sabanayagam et al. (ICLR 2025, Sec. 3 and App. B) write every architecture as a product of a
fixed n x n aggregation matrix S with node-wise maps:

=========  ==============================================================================
model      S
=========  ==============================================================================
gcn, sgc   ``"sym"``: D^-1/2 (A + I) D^-1/2  (Kipf & Welling);  ``"row"``: D^-1 (A + I)
sage       D^-1 A + I   (mean over neighbours plus the node itself; isolated nodes: I)
gin        A + I        (sum over neighbours plus the node itself, eps = 0)
appnp      S_0 = I, S_{k+1} = (1 - a) S_hat S_k + a I for ``appnp_iterations`` steps,
           S_hat the ``normalization`` of A + I (``"sym"`` in the paper)
mlp        I            (APPNP with a = 1)
=========  ==============================================================================

D is the degree matrix of the matrix being normalised (A + I for gcn/sgc/appnp, A for sage).
The NTK recursions only need products S M and S M S^T with dense symmetric n x n matrices M;
:class:`Aggregation` provides them in O(nnz(A) n) time without ever forming a dense S (APPNP's
S is dense, so it is applied by its power iteration instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Aggregation", "validate_adjacency", "normalized_adjacency", "aggregation_operator",
           "aggregation_matrix", "AGGREGATION_MODELS", "NORMALIZATIONS"]

AGGREGATION_MODELS = ("gcn", "sgc", "appnp", "gin", "sage", "mlp")
NORMALIZATIONS = ("sym", "row")
#: Largest number of APPNP power-iteration steps accepted (the paper uses 10).
MAX_APPNP_ITERATIONS = 10_000


def _check_appnp_iterations(value) -> int:
    from certlab.utils import check_nonnegative_int

    value = check_nonnegative_int(value, "appnp_iterations")
    if value > MAX_APPNP_ITERATIONS:
        raise ValueError(f"appnp_iterations={value} is above the limit MAX_APPNP_ITERATIONS="
                         f"{MAX_APPNP_ITERATIONS} (certlab.ntk.aggregation): refused up front")
    return value


def validate_adjacency(adj) -> sp.csr_matrix:
    """Check that ``adj`` is an unweighted, undirected graph without self-loops.

    Args:
        adj: scipy sparse matrix or array-like of shape (n, n) with entries in {0, 1},
            symmetric, zero diagonal.

    Returns:
        The adjacency as a float64 ``scipy.sparse.csr_matrix`` (n, n) (explicit zeros removed).

    Raises:
        TypeError: ``adj`` is not a matrix.
        ValueError: not square, empty, non-finite, non-binary, with self-loops or not
            symmetric (each message names the fix).
    """
    if sp.issparse(adj):
        mat = sp.csr_matrix(adj, dtype=np.float64, copy=True)
    else:
        try:
            arr = np.asarray(adj, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"adj must be a scipy sparse matrix or a numeric (n, n) array, "
                            f"got {type(adj).__name__}") from exc
        if arr.ndim != 2:
            raise ValueError(f"adj must be a 2-d (n, n) matrix, got shape {arr.shape}")
        mat = sp.csr_matrix(arr)
    if mat.shape[0] != mat.shape[1]:
        raise ValueError(f"adj must be square (n, n), got shape {mat.shape}")
    if mat.shape[0] == 0:
        raise ValueError("adj must have at least one node, got shape (0, 0)")
    mat.eliminate_zeros()
    if not np.all(np.isfinite(mat.data)):
        raise ValueError("adj contains NaN or infinite entries")
    if np.any(mat.data != 1.0):
        bad = np.unique(mat.data[mat.data != 1.0])[:5]
        raise ValueError(f"adj must be a binary 0/1 matrix (an unweighted graph), found "
                         f"entries {bad.tolist()}")
    if mat.diagonal().any():
        raise ValueError(f"adj must not contain self-loops (found {int(mat.diagonal().sum())} "
                         "on the diagonal); the aggregations add them where the model needs "
                         "them - remove them with certlab.graphs.preprocess.drop_self_loops")
    if (mat != mat.T).nnz:
        raise ValueError("adj must be symmetric (an undirected graph); symmetrize it with "
                         "certlab.graphs.preprocess.symmetrize")
    mat.sort_indices()
    return mat


def _check_normalization(normalization: str) -> str:
    if not isinstance(normalization, str) or normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    return normalization


def _inverse_or_zero(values: np.ndarray, power: float) -> np.ndarray:
    out = np.zeros_like(values, dtype=np.float64)
    positive = values > 0
    out[positive] = values[positive] ** (-power)
    return out


def normalized_adjacency(adj, normalization: str = "sym") -> sp.csr_matrix:
    """GCN normalisation of A + I: D^-1/2 (A + I) D^-1/2 (``"sym"``) or D^-1 (A + I) (``"row"``).

    Args:
        adj: (n, n) adjacency without self-loops (see :func:`validate_adjacency`).
        normalization: ``"sym"`` or ``"row"``.

    Returns:
        float64 csr matrix (n, n); D is the degree matrix of A + I.
    """
    normalization = _check_normalization(normalization)
    a = validate_adjacency(adj)
    a_tilde = (a + sp.identity(a.shape[0], dtype=np.float64, format="csr")).tocsr()
    degree = np.asarray(a_tilde.sum(axis=1)).ravel()
    if normalization == "sym":
        d = sp.diags(_inverse_or_zero(degree, 0.5))
        return (d @ a_tilde @ d).tocsr()
    return (sp.diags(_inverse_or_zero(degree, 1.0)) @ a_tilde).tocsr()


@dataclass(frozen=True)
class Aggregation:
    """A fixed linear aggregation S (n x n) applied as an operator.

    Exactly one representation is used: ``matrix`` (an explicit sparse S), or ``propagation``
    with ``appnp_alpha`` / ``appnp_iterations`` (APPNP's power iteration
    S_{k+1} = (1 - a) S_hat S_k + a I, S_0 = I), or neither (S = I).

    Attributes:
        name: a short description, e.g. ``"gcn-sym"``.
        n: number of nodes.
        matrix: explicit float64 csr S (n, n) or ``None``.
        propagation: S_hat for APPNP (csr (n, n)) or ``None``.
        appnp_alpha: teleport probability a of APPNP.
        appnp_iterations: number of power-iteration steps of APPNP.
    """

    name: str
    n: int
    matrix: sp.csr_matrix | None = None
    propagation: sp.csr_matrix | None = None
    appnp_alpha: float = 0.1
    appnp_iterations: int = 10

    @property
    def is_identity(self) -> bool:
        return self.matrix is None and self.propagation is None

    def apply(self, m: np.ndarray) -> np.ndarray:
        """S @ m for a dense float64 array m of shape (n, k)."""
        m = np.asarray(m, dtype=np.float64)
        if m.shape[0] != self.n:
            raise ValueError(f"operand has {m.shape[0]} rows, the aggregation has n={self.n}")
        if self.matrix is not None:
            return np.asarray(self.matrix @ m)
        if self.propagation is not None:
            a = self.appnp_alpha
            out = m.copy()
            for _ in range(self.appnp_iterations):
                out = (1.0 - a) * np.asarray(self.propagation @ out) + a * m
            return out
        return m.copy()

    def sandwich(self, m: np.ndarray) -> np.ndarray:
        """S m S^T for a dense symmetric (n, n) array m, symmetrised against round-off."""
        left = self.apply(m)                 # S m
        out = self.apply(left.T).T           # (S (S m)^T)^T = S m^T S^T = S m S^T (m symmetric)
        return 0.5 * (out + out.T)

    def to_dense(self) -> np.ndarray:
        """The dense float64 matrix S (n, n) (for figures and tests)."""
        return self.apply(np.eye(self.n))


def _check_unit_interval(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number in [0, 1], got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0.0 or value > 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return value


def aggregation_operator(adj, model: str, *, normalization: str = "sym",
                         appnp_alpha: float = 0.1, appnp_iterations: int = 10) -> Aggregation:
    """The aggregation S of ``model`` on the graph ``adj`` (table in the module docstring).

    Args:
        adj: (n, n) symmetric 0/1 adjacency without self-loops, scipy sparse or dense.
        model: one of ``"gcn"``, ``"sgc"``, ``"appnp"``, ``"gin"``, ``"sage"``, ``"mlp"``.
        normalization: ``"sym"`` or ``"row"``; used by gcn, sgc and appnp (its S_hat), not by
            gin, sage and mlp whose S is fixed by the architecture.
        appnp_alpha: APPNP teleport probability a in [0, 1].
        appnp_iterations: APPNP power-iteration steps (non-negative integer).

    Returns:
        An :class:`Aggregation`.
    """
    if not isinstance(model, str) or model not in AGGREGATION_MODELS:
        raise ValueError(f"unknown model {model!r}; valid models: {', '.join(AGGREGATION_MODELS)}")
    normalization = _check_normalization(normalization)
    appnp_alpha = _check_unit_interval(appnp_alpha, "appnp_alpha")
    appnp_iterations = _check_appnp_iterations(appnp_iterations)
    a = validate_adjacency(adj)
    n = a.shape[0]
    eye = sp.identity(n, dtype=np.float64, format="csr")
    if model in ("gcn", "sgc"):
        return Aggregation(f"{model}-{normalization}", n, matrix=normalized_adjacency(a, normalization))
    if model == "sage":
        degree = np.asarray(a.sum(axis=1)).ravel()
        s = (sp.diags(_inverse_or_zero(degree, 1.0)) @ a + eye).tocsr()
        return Aggregation("sage", n, matrix=s)
    if model == "gin":
        return Aggregation("gin", n, matrix=(a + eye).tocsr())
    if model == "mlp":
        return Aggregation("mlp", n)
    return Aggregation(f"appnp-{normalization}", n,
                       propagation=normalized_adjacency(a, normalization),
                       appnp_alpha=appnp_alpha, appnp_iterations=appnp_iterations)


def aggregation_matrix(adj, model: str, *, normalization: str = "sym", appnp_alpha: float = 0.1,
                       appnp_iterations: int = 10) -> np.ndarray:
    """Dense float64 S (n, n) of ``model`` (see :func:`aggregation_operator`)."""
    return aggregation_operator(adj, model, normalization=normalization, appnp_alpha=appnp_alpha,
                                appnp_iterations=appnp_iterations).to_dense()
