"""Closed-form neural tangent kernels of infinitely wide GNNs for node classification.

Sabanayagam et al. (ICLR 2025, Sec. 3, Eq. (3)-(5) and App. B; the GCN recursion is from
Sabanayagam, Esser & Ghoshdastidar, TMLR 2023). Every architecture is a stack of
L = ``depth`` hidden layers in the NTK parameterisation (all weights N(0, 1), layer inputs
scaled by sqrt(c_sigma / width), c_sigma = 2 for ReLU and 1 for the linear activation), one
scalar output per node, whole graph at once (transductive). With the aggregation S of
:mod:`certlab.ntk.aggregation`, the activation expectations (E, Edot) of
:mod:`certlab.ntk.relu_kernels` and Hadamard products ``*``:

GCN / SGC / GraphSAGE (f = S phi(... phi(S X W_1) ...) W_{L+1}):

    Sig_1 = S X X^T S^T
    for i = 1..L:   Theta <- S ((Theta + Sig_i) * Edot_i) S^T      (Theta_0 = 0)
                    Sig_{i+1} = S E_i S^T
    NTK = Sig_{L+1} + Theta

  (the running sum Theta is the paper's sum_i Theta_i, each term propagated by the same map).
  SGC is the GCN with the linear activation; depth 1 gives NTK = 2 S^2 X X^T (S^2)^T.

Skip-PC (X concatenated to the input of every later layer, f = S [phi(F_L), X] W_{L+1}):
    Sig_{i+1} = S E_i S^T + S X X^T S^T.

Skip-alpha (initial residual, F_1 = ((1-a) S + a I) X W_1,
F_{i+1} = (1-a) S phi(F_i) W_{i+1} + a X V_{i+1}, output likewise):
    Sig_1 = (1-a)^2 S XX^T S^T + (1-a) a (XX^T S^T + S XX^T) + a^2 XX^T
    Sig_{i+1} = (1-a)^2 S E_i S^T + a^2 XX^T
    Theta <- (1-a)^2 S ((Theta + Sig_i) * Edot_i) S^T.
  The factor (1-a)^2 in the Theta update is the chain rule through the (1-a) S phi(F_i) W
  path of the explicit network. The authors' code omits it (their Theta_i = S (Sig_i *
  Edot_i) S^T); the finite-width empirical NTK of the explicit network converges to the
  version WITH the factor and not to the reference's (``tests/test_ntk_empirical.py``,
  chapter 21), so that is what :func:`gnn_ntk` returns. :func:`skip_alpha_reference_ntk`
  gives the reference's variant for comparison.

GIN (f = phi(... phi((A+I) X W_1) ...) W_{L+1}, no aggregation at the output): the GCN
recursion with S = A + I at the hidden layers and the identity at the output; depth 1:
NTK = Sig * Edot + E with Sig = S X X^T S^T.

APPNP / MLP (f = S (phi(... phi(X W_1 + b_1) ...) W_{L+1} + b_{L+1}), biases N(0, 1);
MLP = APPNP with a = 1, i.e. S = I):
    Sig_1 = X X^T + 1 1^T
    for i = 1..L-1:  Theta <- (Theta + Sig_i) * Edot_i;  Sig_{i+1} = E_i + 1 1^T
    last layer:      Theta <- S ((Theta + Sig_L) * Edot_L) S^T;  Sig_{L+1} = S (E_L + 1 1^T) S^T
    NTK = Sig_{L+1} + Theta
  (depth 1: NTK = S (Sig * Edot) S^T + S (E + 1 1^T) S^T as in the note).

Everything is float64 (the reference casts one intermediate to float32); only the
correlation is clipped (see :mod:`certlab.ntk.relu_kernels`); every intermediate is
symmetrised against round-off so the returned kernel is exactly symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from certlab.utils import check_nonnegative_int

from .aggregation import (AGGREGATION_MODELS, NORMALIZATIONS, Aggregation,
                          _check_appnp_iterations, _check_unit_interval, aggregation_operator,
                          validate_adjacency)
from .relu_kernels import ACTIVATIONS, activation_expectations

__all__ = ["gnn_ntk", "clamp_covariance", "skip_alpha_reference_ntk", "GNNArchitecture", "resolve_architecture",
           "validate_features", "MODELS", "SKIPS", "MAX_DEPTH", "MAX_NTK_WORK", "MAX_NTK_BYTES"]

MODELS = AGGREGATION_MODELS
SKIPS = (None, "pc", "alpha")
SKIP_MODELS = ("gcn", "sgc", "sage")

#: Largest number of hidden layers accepted (the paper uses at most a handful; deeper
#: requests are refused up front instead of running for hours).
MAX_DEPTH = 1000
#: Largest estimated number of floating-point operations of one closed-form NTK
#: (``depth * (30 n^2 + 4 n * nnz(S) * steps)``, about a few minutes on one CPU core).
MAX_NTK_WORK = 5e11
#: Largest estimated working memory of the recursion (about ten dense (n, n) float64 arrays).
MAX_NTK_BYTES = 16 * 2**30


@dataclass(frozen=True)
class GNNArchitecture:
    """Validated description of a network whose NTK is computed (closed form or empirical).

    Attributes:
        model: ``"gcn"``, ``"sgc"``, ``"appnp"``, ``"gin"``, ``"sage"`` or ``"mlp"``.
        depth: number of hidden layers L >= 1.
        activation: effective activation (``"linear"`` for sgc whatever was asked for).
        normalization: ``"sym"`` or ``"row"`` (gcn, sgc, appnp).
        skip: ``None``, ``"pc"`` or ``"alpha"``.
        skip_alpha: a of the skip-alpha connection.
        appnp_alpha: APPNP teleport probability.
        appnp_iterations: APPNP power-iteration steps.
    """

    model: str
    depth: int
    activation: str
    normalization: str
    skip: str | None
    skip_alpha: float
    appnp_alpha: float
    appnp_iterations: int

    @property
    def has_bias(self) -> bool:
        """APPNP and MLP have N(0, 1) biases in every layer (the reference's configuration)."""
        return self.model in ("appnp", "mlp")

    @property
    def aggregates_hidden_layers(self) -> bool:
        """GCN family and GIN aggregate in every layer; APPNP/MLP only at the output."""
        return self.model in ("gcn", "sgc", "sage", "gin")

    @property
    def aggregates_output(self) -> bool:
        """GIN's readout is a plain linear layer; all others aggregate the output."""
        return self.model != "gin"


def resolve_architecture(model: str, *, depth: int = 1, activation: str = "relu",
                         normalization: str = "sym", skip: str | None = None,
                         skip_alpha: float = 0.1, appnp_alpha: float = 0.1,
                         appnp_iterations: int = 10) -> GNNArchitecture:
    """Validate the architecture arguments of :func:`gnn_ntk` (see there) and bundle them.

    Raises:
        ValueError / TypeError: unknown model (the message lists the valid ones), activation,
            normalization or skip; depth < 1 or above :data:`MAX_DEPTH`; skip with a model
            other than gcn/sgc/sage; alphas outside [0, 1]; negative iteration counts or more
            than :data:`~certlab.ntk.aggregation.MAX_APPNP_ITERATIONS`.
    """
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    depth = check_nonnegative_int(depth, "depth")
    if depth < 1:
        raise ValueError(f"depth (number of hidden layers) must be >= 1, got {depth}")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth={depth} is above the limit MAX_DEPTH={MAX_DEPTH} hidden layers "
                         "(certlab.ntk.gnn.MAX_DEPTH): refused up front")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if not isinstance(normalization, str) or normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if skip not in SKIPS:
        raise ValueError(f"skip must be one of {SKIPS}, got {skip!r}")
    if skip is not None and model not in SKIP_MODELS:
        raise ValueError(f"skip={skip!r} is defined for the models {SKIP_MODELS}, not "
                         f"{model!r}")
    skip_alpha = _check_unit_interval(skip_alpha, "skip_alpha")
    appnp_alpha = _check_unit_interval(appnp_alpha, "appnp_alpha")
    appnp_iterations = _check_appnp_iterations(appnp_iterations)
    if model == "sgc":
        activation = "linear"
    return GNNArchitecture(model, depth, activation, normalization, skip, skip_alpha,
                           appnp_alpha, appnp_iterations)


def validate_features(features, n: int) -> np.ndarray:
    """Node features as a dense float64 (n, d) array; sparse input is densified.

    Raises:
        TypeError: not array-like. ValueError: not 2-d, wrong number of rows, d = 0, NaN/inf.
    """
    if sp.issparse(features):
        x = features.toarray().astype(np.float64)
    else:
        try:
            x = np.array(features, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"features must be a numeric (n, d) array or scipy sparse matrix, "
                            f"got {type(features).__name__}") from exc
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-d (n, d) array, got shape {x.shape}")
    if x.shape[0] != n:
        raise ValueError(f"features has {x.shape[0]} rows but adj has n={n} nodes")
    if x.shape[1] == 0:
        raise ValueError("features must have at least one column (d >= 1)")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contains NaN or infinite entries")
    return x


def _gram(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        xx = x @ x.T
    if not np.all(np.isfinite(xx)):
        raise ValueError(f"features are too large for float64: X X^T overflows (largest |entry| "
                         f"of X is {np.abs(x).max():.3g}); rescale the features")
    return 0.5 * (xx + xx.T)


def _check_cost(arch: GNNArchitecture, s: Aggregation) -> None:
    """Refuse up front a recursion whose estimated work or memory is above the limits."""
    n = s.n
    nnz = 0 if s.is_identity else (s.matrix if s.matrix is not None else s.propagation).nnz
    steps = s.appnp_iterations if s.propagation is not None else 1
    work = arch.depth * (30.0 * n * n + 4.0 * n * (nnz + n) * steps)
    memory = 10.0 * 8 * n * n
    if work > MAX_NTK_WORK:
        raise ValueError(f"the NTK recursion would take about {work:.2g} floating-point "
                         f"operations (n={n} nodes, depth={arch.depth}, {steps} aggregation "
                         f"step(s) per layer), above the limit MAX_NTK_WORK={MAX_NTK_WORK:.2g} "
                         "(certlab.ntk.gnn): refused up front")
    if memory > MAX_NTK_BYTES:
        raise ValueError(f"the NTK of n={n} nodes needs about {memory / 2**30:.1f} GiB of "
                         f"memory, above the limit MAX_NTK_BYTES={MAX_NTK_BYTES / 2**30:.0f} GiB "
                         "(certlab.ntk.gnn): refused up front")


def _check_layer(values: np.ndarray, layer: int) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"the NTK recursion overflowed float64 at hidden layer {layer} (NaN or "
                         "inf entries): no kernel is returned; rescale the features or use "
                         "fewer layers")


def clamp_covariance(sigma: np.ndarray) -> np.ndarray:
    """The authors' covariance clamp: ``min(S_ij, S_ii, S_jj)`` entrywise (float64 (n, n)).

    Sabanayagam et al.'s reference code applies this to the covariance before every ReLU
    expectation, in place, so the clamped covariance also enters the derivative term
    ``Sigma * Edot`` of the NTK. Its comment says it guards against round-off; but the valid
    bound of a covariance is ``sqrt(S_ii S_jj) >= min(S_ii, S_jj)``, so it also lowers
    legitimate entries of nodes with different variances (``shared/notes/label_poisoning.md``).
    Offered only to reproduce the published numbers (``gnn_ntk(..., covariance_clamp=True)``).
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    d = np.diag(sigma)
    return np.minimum(sigma, np.minimum.outer(d, d))


def _ntk_recursion(arch: GNNArchitecture, s: Aggregation, xx: np.ndarray,
                   *, reference_skip_alpha: bool = False,
                   covariance_clamp: bool = False) -> np.ndarray:
    """The recursion of the module docstring for a validated architecture (float64 (n, n));
    ``covariance_clamp`` applies :func:`clamp_covariance` before every ReLU expectation."""
    n = xx.shape[0]
    ones = np.ones((n, n)) if arch.has_bias else 0.0
    identity = Aggregation("identity", n)
    a = arch.skip_alpha
    skip_term = 0.0
    factor = 1.0
    if arch.has_bias:
        sig = xx + ones
    elif arch.skip == "alpha":
        mix = Aggregation("skip-alpha-mix", n,
                          matrix=((1.0 - a) * s.matrix
                                  + a * sp.identity(n, dtype=np.float64, format="csr")).tocsr())
        sig = mix.sandwich(xx)
        skip_term = a * a * xx
        factor = (1.0 - a) ** 2
    else:
        sig = s.sandwich(xx)
        if arch.skip == "pc":
            skip_term = sig.copy()
    theta_factor = 1.0 if reference_skip_alpha else factor
    theta = np.zeros((n, n))
    for layer in range(1, arch.depth + 1):
        if covariance_clamp and arch.activation == "relu":
            sig = clamp_covariance(sig)
        e, edot = activation_expectations(sig, arch.activation)
        is_last = layer == arch.depth
        if is_last:
            op = s if arch.aggregates_output else identity
        else:
            op = s if arch.aggregates_hidden_layers else identity
        with np.errstate(over="ignore", invalid="ignore"):
            theta = theta_factor * op.sandwich((theta + sig) * edot)
            sig = factor * op.sandwich(e + ones) + skip_term
            sig = 0.5 * (sig + sig.T)
        _check_layer(theta, layer)
        _check_layer(sig, layer)
    with np.errstate(over="ignore", invalid="ignore"):
        ntk = sig + theta
        ntk = 0.5 * (ntk + ntk.T)
    _check_layer(ntk, arch.depth)
    return ntk


def gnn_ntk(adj, features, model: str, *, depth: int = 1, activation: str = "relu",
            normalization: str = "sym", skip: str | None = None, skip_alpha: float = 0.1,
            appnp_alpha: float = 0.1, appnp_iterations: int = 10,
            covariance_clamp: bool = False) -> np.ndarray:
    """Closed-form NTK (n, n) of an infinitely wide GNN for node classification.

    Args:
        adj: symmetric 0/1 adjacency (n, n) without self-loops; scipy sparse or dense.
        features: node features (n, d), dense or scipy sparse.
        model: ``"gcn"``, ``"sgc"`` (the linear GCN; ``activation`` is ignored), ``"appnp"``,
            ``"gin"``, ``"sage"`` (GraphSAGE, S = D^-1 A + I) or ``"mlp"`` (APPNP with
            a = 1, with biases).
        depth: number of hidden layers L >= 1.
        activation: ``"relu"`` or ``"linear"``.
        normalization: ``"sym"`` (D^-1/2 (A+I) D^-1/2) or ``"row"`` (D^-1 (A+I)); used by
            gcn, sgc and appnp's propagation matrix.
        skip: ``None``, ``"pc"`` (skip-PC) or ``"alpha"`` (skip-alpha); gcn, sgc, sage only.
        skip_alpha: a of skip-alpha in [0, 1] (0.1 in the paper on Cora-MLb / CSBM).
        appnp_alpha: APPNP teleport probability in [0, 1].
        appnp_iterations: APPNP power-iteration steps (10 in the paper).
        covariance_clamp: ``True`` reproduces the authors' published kernels: every covariance
            entry is clamped to ``min(S_ii, S_jj)`` before each ReLU expectation
            (:func:`clamp_covariance`). Not the infinite-width NTK (the finite-width check in
            ``tests/test_ntk_empirical.py`` agrees with ``False``, the default), and possibly
            not positive semi-definite; for comparison with the paper only.

    Returns:
        Dense, exactly symmetric, float64 NTK of shape (n, n) (formulas: module docstring).

    Raises:
        ValueError: invalid architecture, adjacency or features (NaN/inf included); features
            so large that X X^T overflows float64; a recursion that overflows (never a NaN or
            inf kernel); an estimated cost above :data:`MAX_NTK_WORK` operations or
            :data:`MAX_NTK_BYTES` of memory (refused before any work).

    Example:
        >>> import numpy as np
        >>> adj = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> gnn_ntk(adj, np.eye(3), "sgc").shape
        (3, 3)
    """
    arch = resolve_architecture(model, depth=depth, activation=activation,
                                normalization=normalization, skip=skip, skip_alpha=skip_alpha,
                                appnp_alpha=appnp_alpha, appnp_iterations=appnp_iterations)
    a = validate_adjacency(adj)
    x = validate_features(features, a.shape[0])
    s = aggregation_operator(a, arch.model, normalization=arch.normalization,
                             appnp_alpha=arch.appnp_alpha,
                             appnp_iterations=arch.appnp_iterations)
    if not isinstance(covariance_clamp, (bool, np.bool_)):
        raise TypeError(f"covariance_clamp must be True or False, got {covariance_clamp!r}")
    _check_cost(arch, s)
    return _ntk_recursion(arch, s, _gram(x), covariance_clamp=bool(covariance_clamp))


def skip_alpha_reference_ntk(adj, features, *, model: str = "gcn", depth: int = 1,
                             activation: str = "relu", normalization: str = "sym",
                             skip_alpha: float = 0.1,
                             covariance_clamp: bool = False) -> np.ndarray:
    """Skip-alpha NTK as the authors' code computes it: Theta without the (1 - a)^2 factor.

    For comparison only (chapter 21, ``tests/test_ntk_empirical.py``): the explicit
    skip-alpha network's finite-width NTK converges to :func:`gnn_ntk` with
    ``skip="alpha"``, not to this. (The authors' additional min(S_ii, S_jj) covariance clamp
    is a separate option of :func:`gnn_ntk`, ``covariance_clamp=True``.) Arguments as in :func:`gnn_ntk`; returns float64 (n, n).
    """
    arch = resolve_architecture(model, depth=depth, activation=activation,
                                normalization=normalization, skip="alpha",
                                skip_alpha=skip_alpha)
    a = validate_adjacency(adj)
    x = validate_features(features, a.shape[0])
    s = aggregation_operator(a, arch.model, normalization=arch.normalization)
    if not isinstance(covariance_clamp, (bool, np.bool_)):
        raise TypeError(f"covariance_clamp must be True or False, got {covariance_clamp!r}")
    _check_cost(arch, s)
    return _ntk_recursion(arch, s, _gram(x), reference_skip_alpha=True,
                          covariance_clamp=bool(covariance_clamp))
