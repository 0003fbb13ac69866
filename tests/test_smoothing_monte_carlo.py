"""Monte-Carlo smoothing (certlab.smoothing.monte_carlo): votes, bounds, abstention.

Toy base classifiers with a known vote probability under phi make the expected counts exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn
from torch_geometric.data import Data

from certlab.smoothing.certificate import max_certified_radius
from certlab.smoothing.monte_carlo import (
    SmoothingResult,
    largest_certifiable_radius,
    sample_votes,
    smooth_graphs,
    smooth_images,
    smooth_nodes,
    smoothing_bounds,
    unanimous_bounds,
)
from certlab.smoothing.reference import certify_grid_reference
from certlab.smoothing.sampling import SparseNoise
from certlab.stats import clopper_pearson_interval, clopper_pearson_lower, clopper_pearson_upper


class HasOneClassifier(nn.Module):
    """Node i -> class 1 if its attribute row has a one, else class 0 (two classes)."""

    def forward(self, x, edge_index):
        ones = x.to_dense().sum(1) if x.layout != torch.strided else x.sum(1)
        logits = torch.stack([torch.zeros_like(ones), ones - 0.5], dim=1)
        return logits


class DegreeClassifier(nn.Module):
    """Node -> class min(degree, 2) (three classes): depends on the structure only."""

    def forward(self, x, edge_index):
        n = x.shape[0]
        deg = torch.bincount(edge_index[0], minlength=n).clamp(max=2)
        return nn.functional.one_hot(deg, 3).float()


def _line_graph(n):
    e = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    return torch.cat([e, e.flip(0)], dim=1)


def test_node_votes_match_the_noise_probability():
    # node 0..4 have a single attribute one, nodes 5..9 none; d = 3
    rows = np.arange(5)
    attr = sp.csr_matrix((np.ones(5), (rows, np.zeros(5))), shape=(10, 3))
    p_minus, p_plus = 0.3, 0.1
    res = smooth_nodes(HasOneClassifier(), attr, _line_graph(10),
                       attr_noise=SparseNoise(p_plus, p_minus), n0=200, n=4000, alpha=1e-3,
                       batch_size=64, device="cpu", seed=0, progress=False)
    assert isinstance(res, SmoothingResult)
    assert res.counts_selection.shape == (10, 2) and res.counts_estimation.shape == (10, 2)
    assert (res.counts_selection.sum(1) == 200).all() and (res.counts_estimation.sum(1) == 4000).all()
    # P(class 1): a node with one keeps it (0.7) or gains one of 2 zeros; without ones, 1-0.9^3
    p1 = np.where(np.arange(10) < 5, 1 - p_minus * (1 - p_plus) ** 2, 1 - (1 - p_plus) ** 3)
    lo, hi = clopper_pearson_interval(res.counts_estimation[:, 1], 4000, 1e-6)
    assert np.all((lo <= p1) & (p1 <= hi))
    np.testing.assert_array_equal(res.predicted, (p1 > 0.5).astype(int))
    # binary task: alpha itself, p_upper = 1 - p_lower
    top = res.counts_estimation[np.arange(10), res.predicted]
    np.testing.assert_allclose(res.p_lower, clopper_pearson_lower(top, 4000, 1e-3))
    np.testing.assert_allclose(res.p_upper, 1 - res.p_lower)
    assert not res.abstain.any()
    assert res.certificate_p_upper is None
    assert res.accuracy((p1 > 0.5).astype(int)) == 1.0


def test_graph_noise_votes_and_bonferroni():
    n = 4
    res = smooth_nodes(DegreeClassifier(), np.eye(n, dtype=np.float32), _line_graph(n),
                       graph_noise=(0.0, 0.5), n0=100, n=3000, alpha=0.05, batch_size=100,
                       device="cpu", seed=1, progress=False)
    # end nodes: degree 1 w.p. 0.5, else 0; inner nodes: degree 2 w.p. 0.25, 1 w.p. 0.5
    want = np.array([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.25, 0.5, 0.25], [0.5, 0.5, 0.0]])
    lo, hi = clopper_pearson_interval(res.counts_estimation, 3000, 1e-6)
    assert np.all((lo <= want) & (want <= hi))
    assert res.multiclass and res.alpha_per_bound == pytest.approx(0.05 / 3)
    rows = np.arange(n)
    top = res.counts_estimation[rows, res.predicted]
    np.testing.assert_allclose(res.p_lower, clopper_pearson_lower(top, 3000, 0.05 / 3))
    others = res.counts_estimation.copy()
    others[rows, res.predicted] = -1
    upper = clopper_pearson_upper(others.max(1), 3000, 0.05 / 3)
    np.testing.assert_allclose(res.p_upper, np.minimum(upper, 1 - res.p_lower))
    # end nodes: a 50/50 tie -> abstain; inner nodes: class 1 (0.5) beats 0.25 -> predict 1
    np.testing.assert_array_equal(res.abstain, [True, False, False, True])
    np.testing.assert_array_equal(res.abstain, res.p_lower <= res.p_upper)
    np.testing.assert_array_equal(res.prediction(), [-1, 1, 1, -1])


def test_seeded_and_batch_size_independent_counts_sum():
    attr = sp.csr_matrix(np.eye(6, dtype=np.float32))
    kw = dict(attr_noise=(0.2, 0.2), graph_noise=(0.1, 0.3), n0=30, n=70, alpha=0.01,
              device="cpu", progress=False)
    a = smooth_nodes(HasOneClassifier(), attr, _line_graph(6), seed=3, batch_size=16, **kw)
    b = smooth_nodes(HasOneClassifier(), attr, _line_graph(6), seed=3, batch_size=16, **kw)
    c = smooth_nodes(HasOneClassifier(), attr, _line_graph(6), seed=4, batch_size=7, **kw)
    np.testing.assert_array_equal(a.counts_estimation, b.counts_estimation)
    assert (c.counts_estimation.sum(1) == 70).all() and (c.counts_selection.sum(1) == 30).all()
    assert not np.array_equal(a.counts_estimation, c.counts_estimation)


def test_smoothing_bounds_rules_and_validation():
    sel = np.array([[8, 2], [3, 7], [5, 5]])
    est = np.array([[95, 5], [40, 60], [50, 50]])
    res = smoothing_bounds(sel, est, 0.01)
    np.testing.assert_array_equal(res.predicted, [0, 1, 0])
    np.testing.assert_array_equal(res.abstain, res.p_lower <= 0.5)
    assert res.abstain.tolist() == [False, True, True]
    with pytest.raises(ValueError, match="n0"):
        smoothing_bounds(np.array([[80, 20]]), np.array([[5, 5]]), 0.01)
    for alpha in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            smoothing_bounds(sel, est, alpha)
    with pytest.raises(TypeError, match="alpha"):
        smoothing_bounds(sel, est, "0.01")
    with pytest.raises(ValueError, match="shape"):
        smoothing_bounds(sel, est[:2], 0.01)
    with pytest.raises(ValueError, match="add up"):
        smoothing_bounds(sel, np.array([[95, 5], [40, 60], [50, 49]]), 0.01, n=100)
    with pytest.raises(ValueError, match="non-negative integers"):
        smoothing_bounds(sel.astype(float), est, 0.01)


def test_smooth_nodes_validates_arguments():
    attr = sp.csr_matrix(np.eye(4, dtype=np.float32))
    model, ei = HasOneClassifier(), _line_graph(4)
    base = dict(device="cpu", progress=False)
    with pytest.raises(ValueError, match="n0"):
        smooth_nodes(model, attr, ei, attr_noise=(0.1, 0.1), n0=20, n=10, **base)
    with pytest.raises(ValueError, match="n0 must be positive"):
        smooth_nodes(model, attr, ei, attr_noise=(0.1, 0.1), n0=0, n=0, **base)
    with pytest.raises(ValueError, match="alpha"):
        smooth_nodes(model, attr, ei, attr_noise=(0.1, 0.1), n0=5, n=10, alpha=1.0, **base)
    with pytest.raises(ValueError, match="binary"):
        smooth_nodes(model, attr * 2, ei, attr_noise=(0.1, 0.1), n0=5, n=10, **base)
    with pytest.raises(ValueError, match="p_minus"):
        smooth_nodes(model, attr, ei, attr_noise=(0.1, 1.1), n0=5, n=10, **base)
    with pytest.raises(TypeError, match="attr_noise"):
        smooth_nodes(model, attr, ei, attr_noise=0.1, n0=5, n=10, **base)
    with pytest.raises(TypeError, match="model"):
        smooth_nodes(lambda x, e: x, attr, ei, n0=5, n=10, **base)
    with pytest.raises(ValueError, match="batch_size"):
        smooth_nodes(model, attr, ei, n0=5, n=10, batch_size=0, **base)
    with pytest.raises(ValueError, match="device"):
        smooth_nodes(model, attr, ei, n0=5, n=10, device="tpu-9000", progress=False)


def test_sample_votes_checks_forward_output():
    with pytest.raises(ValueError, match="predictions"):
        sample_votes(lambda b: torch.zeros(b * 3 + 1, 2), 3, 10, 4, progress=False)
    counts = sample_votes(lambda b: torch.ones(b * 3, dtype=torch.long), 3, 10, 4,
                          progress=False, n_classes=2)
    np.testing.assert_array_equal(counts, [[0, 10]] * 3)


class EdgeCountGraphClassifier(nn.Module):
    """Graph -> class 1 if it has at least one edge (two classes)."""

    def forward(self, x, edge_index, batch):
        n_graphs = int(batch.max()) + 1
        has = torch.zeros(n_graphs).index_add_(0, batch[edge_index[0]],
                                               torch.ones(edge_index.shape[1])) > 0
        return torch.stack([(~has).float(), has.float()], dim=1)


def test_smooth_graphs_votes():
    g1 = Data(x=torch.ones(3, 2), edge_index=_line_graph(3), y=torch.tensor([1]))  # 2 edges
    g2 = Data(x=torch.ones(2, 2), edge_index=torch.empty(2, 0, dtype=torch.long),
              y=torch.tensor([0]))
    res = smooth_graphs(EdgeCountGraphClassifier(), [g1, g2], graph_noise=(0.2, 0.5), n0=50,
                        n=2000, alpha=0.01, batch_size=64, device="cpu", progress=False)
    # g1: P(no edge) = 0.5^2 * 0.8; g2: P(no edge) = 0.8
    want = np.array([1 - 0.5 ** 2 * 0.8, 0.2])
    lo, hi = clopper_pearson_interval(res.counts_estimation[:, 1], 2000, 1e-6)
    assert np.all((lo <= want) & (want <= hi))
    np.testing.assert_array_equal(res.predicted, [1, 0])
    g3 = Data(x=torch.ones(2, 5), edge_index=g2.edge_index, y=torch.tensor([0]))
    with pytest.raises(ValueError, match="features"):
        smooth_graphs(EdgeCountGraphClassifier(), [g1, g3], n0=5, n=10, device="cpu",
                      progress=False)
    with pytest.raises(ValueError, match="empty"):
        smooth_graphs(EdgeCountGraphClassifier(), [], n0=5, n=10, device="cpu", progress=False)


class PixelCountClassifier(nn.Module):
    """Image -> class 1 if more than 2 pixels are on."""

    def forward(self, x):
        on = x.flatten(1).sum(1)
        return torch.stack([torch.zeros_like(on), on - 2.5], dim=1)


def test_smooth_images_votes_and_validation():
    imgs = np.zeros((2, 4, 4), dtype=np.uint8)
    imgs[0, :2, :2] = 1  # 4 pixels on
    res = smooth_images(PixelCountClassifier(), imgs, SparseNoise(0.0, 0.5), n0=50, n=2000,
                        alpha=0.01, device="cpu", progress=False)
    p_image0 = 1 - sum(__import__("math").comb(4, k) for k in range(3)) / 16  # >= 3 of 4 kept
    lo, hi = clopper_pearson_interval(res.counts_estimation[0, 1], 2000, 1e-6)
    assert lo <= p_image0 <= hi
    assert res.counts_estimation[1, 1] == 0
    with pytest.raises(ValueError, match="binary"):
        smooth_images(PixelCountClassifier(), imgs * 3, (0.1, 0.1), n0=5, n=10,
                      device="cpu", progress=False)
    with pytest.raises(ValueError, match="shape"):
        smooth_images(PixelCountClassifier(), imgs[0], (0.1, 0.1), n0=5, n=10,
                      device="cpu", progress=False)


def test_result_certify_grid_uses_the_certificate_and_respects_abstention():
    from certlab.smoothing.certificate import certify_grid

    sel = np.array([[10, 0, 0], [10, 0, 0], [4, 3, 3]])
    est = np.array([[1000, 0, 0], [700, 300, 0], [350, 330, 320]])
    res = smoothing_bounds(sel, est, 0.01)
    grid = res.certify_grid(0.01, 0.6, 2, 5)
    assert grid.shape == (3, 3, 6)
    want = certify_grid(res.p_lower, 0.01, 0.6, 2, 5, p_upper=res.p_upper)
    np.testing.assert_array_equal(grid, want & ~res.abstain[:, None, None])
    assert grid[0, 0, 0] and res.abstain[2] and not grid[2].any()
    assert grid[0].sum() >= grid[1].sum()  # more votes, larger certified region


# ------------------------------------------------------------------ non-finite models and inputs
class NaNClassifier(nn.Module):
    """Returns NaN logits: argmax would put every vote on class 0 (issue 10)."""

    def forward(self, x, edge_index=None, batch=None):
        n = int(batch.max()) + 1 if batch is not None else x.shape[0]
        return torch.full((n, 2), float("nan"))


class InfAtNode0(nn.Module):
    """Finite logits except +inf for node 0 of every copy (a single bad row is enough)."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x, edge_index):
        out = torch.zeros(x.shape[0], 2)
        out[::self.n, 1] = float("inf")
        return out


def test_non_finite_logits_never_give_a_bound():
    attr = sp.csr_matrix(np.eye(4, 3))
    ei = _line_graph(4)
    kw = dict(n0=10, n=50, device="cpu", progress=False)
    for noise in ({"attr_noise": (0.1, 0.3)}, {"graph_noise": (0.1, 0.3)}, {}):
        with pytest.raises(ValueError, match="non-finite outputs"):
            smooth_nodes(NaNClassifier(), attr, ei, **noise, **kw)
    with pytest.raises(ValueError, match="non-finite outputs"):
        smooth_nodes(InfAtNode0(4), attr, ei, attr_noise=(0.1, 0.3), **kw)
    graphs = [Data(x=torch.ones(3, 2), edge_index=_line_graph(3))]
    with pytest.raises(ValueError, match="non-finite outputs"):
        smooth_graphs(NaNClassifier(), graphs, graph_noise=(0.1, 0.3), **kw)
    imgs = np.zeros((2, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="non-finite outputs"):
        smooth_images(lambda_module(lambda x: torch.full((x.shape[0], 2), float("nan"))),
                      imgs, (0.1, 0.1), **kw)
    # label outputs: float labels with a fraction are refused, integral floats are fine
    with pytest.raises(ValueError, match="non-integer labels"):
        sample_votes(lambda b: torch.full((b * 3,), 0.5), 3, 10, 4, progress=False,
                     n_classes=2)
    with pytest.raises(ValueError, match="non-finite"):
        sample_votes(lambda b: torch.full((b * 3,), float("nan")), 3, 10, 4, progress=False,
                     n_classes=2)
    with pytest.raises(TypeError, match="torch.Tensor"):
        sample_votes(lambda b: [0] * (b * 3), 3, 10, 4, progress=False, n_classes=2)


def lambda_module(fn):
    class _M(nn.Module):
        def forward(self, x):
            return fn(x)
    return _M()


def test_non_finite_or_non_integer_inputs_are_refused():
    kw = dict(n0=10, n=50, device="cpu", progress=False)
    ei = _line_graph(4)
    for bad in (float("nan"), float("inf")):
        x = np.ones((4, 3), dtype=np.float32)
        x[2, 1] = bad
        for attr in (x, torch.as_tensor(x), sp.csr_matrix(x), torch.as_tensor(x).to_sparse()):
            with pytest.raises(ValueError, match="attr has NaN or infinite"):
                smooth_nodes(HasOneClassifier(), attr, ei, graph_noise=(0.1, 0.3), **kw)
        graphs = [Data(x=torch.as_tensor(x), edge_index=ei)]
        with pytest.raises(ValueError, match=r"graphs\[0\].x has NaN"):
            smooth_graphs(EdgeCountGraphClassifier(), graphs, graph_noise=(0.1, 0.3), **kw)
    # a NaN in a binary input under attr_noise is not binary
    x = np.eye(4, 3)
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="binary"):
        smooth_nodes(HasOneClassifier(), x, ei, attr_noise=(0.1, 0.3), **kw)
    # float node ids are refused, not truncated (1.7 -> 1 before)
    attr = sp.csr_matrix(np.eye(4, 3))
    for bad_ei in (ei.float(), ei.numpy().astype(float) + 0.7, ei.bool()):
        with pytest.raises(TypeError, match="edge_index must hold integer node ids"):
            smooth_nodes(HasOneClassifier(), attr, bad_ei, attr_noise=(0.1, 0.3), **kw)
        with pytest.raises(TypeError, match=r"graphs\[0\].edge_index must hold integer"):
            smooth_graphs(EdgeCountGraphClassifier(),
                          [Data(x=torch.ones(4, 2), edge_index=bad_ei)], **kw)
    with pytest.raises(ValueError, match=r"node ids outside \[0, 4\)"):
        smooth_nodes(HasOneClassifier(), attr, ei + 1, attr_noise=(0.1, 0.3), **kw)
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        smooth_nodes(HasOneClassifier(), attr, ei[0], attr_noise=(0.1, 0.3), **kw)


def test_smoothing_bounds_on_empty_counts_names_the_problem():
    with pytest.raises(ValueError, match="empty"):
        smoothing_bounds(np.zeros((0, 2), dtype=int), np.zeros((0, 2), dtype=int), 0.01)
    with pytest.raises(ValueError, match="counts_selection holds no votes"):
        smoothing_bounds(np.zeros((3, 2), dtype=int), np.ones((3, 2), dtype=int), 0.01)
    with pytest.raises(ValueError, match="counts_estimation holds no votes"):
        smoothing_bounds(np.ones((3, 2), dtype=int), np.zeros((3, 2), dtype=int), 0.01)


# ---------------------------------------------------------------------------------------------
# the cap that the sample size puts on every certificate
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_unanimous_bounds_closed_form(n_classes):
    """All n votes for one class: Clopper-Pearson gives p_lower = alpha_b ** (1 / n) in closed
    form (alpha_b = alpha, or alpha / C with Bonferroni), p_upper = 1 - p_lower."""
    n, alpha = 5000, 0.01
    alpha_b = alpha if n_classes == 2 else alpha / n_classes
    bounds = unanimous_bounds(100, n, alpha, n_classes)
    assert bounds.predicted.tolist() == [0] and not bounds.abstain[0]
    assert bounds.p_lower[0] == pytest.approx(alpha_b ** (1 / n), rel=1e-12)
    assert bounds.p_upper[0] == pytest.approx(1 - alpha_b ** (1 / n), rel=1e-9)
    assert bounds.alpha_per_bound == pytest.approx(alpha_b)


@pytest.mark.parametrize("n_classes, p_plus, p_minus", [(2, 0.01, 0.65), (2, 0.1, 0.1),
                                                        (5, 0.01, 0.6)])
def test_largest_certifiable_radius_against_high_precision(n_classes, p_plus, p_minus):
    """The cap is certified and the next radius is not, by the 1000-bit reference grid."""
    n0, n, alpha = 100, 2000, 0.01
    bounds = unanimous_bounds(n0, n, alpha, n_classes)
    rd = largest_certifiable_radius(n0, n, alpha, n_classes, p_plus, p_minus, kind="rd")
    ra = largest_certifiable_radius(n0, n, alpha, n_classes, p_plus, p_minus, kind="ra")
    assert rd >= 1
    grid = certify_grid_reference(bounds.p_lower, p_plus, p_minus, ra + 1, rd + 1,
                                  p_upper=bounds.certificate_p_upper)[0]
    assert grid[0, rd] and not grid[0, rd + 1]
    assert grid[ra, 0] and not grid[ra + 1, 0]


def test_largest_certifiable_radius_caps_every_vote():
    """No vote split certifies more than the unanimous one (binary, n = 1000, every count)."""
    n0, n, alpha, p_plus, p_minus = 10, 1000, 0.05, 0.01, 0.6
    cap = largest_certifiable_radius(n0, n, alpha, 2, p_plus, p_minus)
    counts = np.arange(n + 1)
    estimation = np.stack([counts, n - counts], axis=1)
    selection = np.tile([n0, 0], (n + 1, 1))
    bounds = smoothing_bounds(selection, estimation, alpha)
    radii = max_certified_radius(bounds.p_lower, p_plus, p_minus, kind="rd")
    assert radii.max() == cap and radii[-1] == cap


def test_largest_certifiable_radius_bad_input():
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        largest_certifiable_radius(10, 100, 0.01, 1, 0.01, 0.6)
    with pytest.raises(ValueError, match="kind must be"):
        largest_certifiable_radius(10, 100, 0.01, 2, 0.01, 0.6, kind="grid")
    with pytest.raises(ValueError, match="must not exceed n"):
        largest_certifiable_radius(1000, 100, 0.01, 2, 0.01, 0.6)
    with pytest.raises(ValueError, match="alpha"):
        unanimous_bounds(10, 100, 1.5, 2)
