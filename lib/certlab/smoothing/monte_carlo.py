"""Monte-Carlo estimation of a smoothed classifier (Bojchevski et al., 2020, Section 4).

The smoothed classifier is ``g(x) = argmax_y P(f(phi(x)) = y)`` (paper eq. (1)). It is
estimated as in Cohen et al. (2019):

1. *selection*: ``n0`` noisy samples vote; the top class ``y_A`` is their majority;
2. *estimation*: ``n`` fresh samples vote; a one-sided Clopper-Pearson bound at level
   ``alpha`` gives ``p_lower <= P(f(phi(x)) = y_A)``.

Binary tasks (2 classes) use ``alpha`` and ``p_upper = 1 - p_lower`` for the other class.
With ``C > 2`` classes every class gets a bound at ``alpha / C`` (Bonferroni), so that all
``C`` bounds hold together with probability ``>= 1 - alpha``; ``p_upper`` is the largest
upper bound among the classes ``!= y_A`` (capped at ``1 - p_lower``). The reference code
bounds only the runner-up of the selection votes; taking the maximum over all other classes
is what the Bonferroni correction pays for and is never less safe. The certificate then
compares ``rho_lower(p_lower)`` with ``0.5`` (binary) or ``rho_upper(p_upper)`` (multi-class);
at radius 0 these rules read ``p_lower > 0.5`` / ``p_lower > p_upper``, and where they fail
the smoothed classifier abstains.

Noisy inputs are processed in batches: ``batch_size`` noisy copies of the whole input (all
nodes of a graph, all graphs of a list, all images) form one disjoint union and go through
the model in one forward pass; the votes of all nodes/graphs/images are counted at once.
"""

from __future__ import annotations


from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm import tqdm

from certlab.smoothing.certificate import certify_grid, max_certified_radius
from certlab.smoothing.sampling import (
    SparseNoise,
    attributes_to_torch,
    _check_edge_index,
    _check_finite_attributes,
    _check_noise,
    batch_edge_index,
    binary_matrix_index,
    pairs_to_edge_index,
    sample_attribute_noise,
    sample_graph_noise,
    tile_attributes,
    undirected_pairs,
)
from certlab.stats import clopper_pearson_lower, clopper_pearson_upper
from certlab.utils import check_nonnegative_int, check_probability, resolve_device

__all__ = [
    "SmoothingResult",
    "smoothing_bounds",
    "unanimous_bounds",
    "largest_certifiable_radius",
    "sample_votes",
    "smooth_nodes",
    "smooth_graphs",
    "smooth_images",
]


@dataclass(frozen=True)
class SmoothingResult:
    """Votes and confidence bounds of a smoothed classifier for ``m`` inputs.

    Attributes:
        predicted: ``(m,)`` int64, the class ``y_A`` with most selection votes (ties: the
            smallest class id). The smoothed prediction unless ``abstain``.
        runner_up: ``(m,)`` int64, the class ``!= y_A`` whose upper bound is ``p_upper``.
        counts_selection: ``(m, C)`` int64 votes of the ``n0`` selection samples.
        counts_estimation: ``(m, C)`` int64 votes of the ``n`` estimation samples.
        p_lower: ``(m,)`` lower confidence bound on ``P(f(phi(x)) = y_A)``.
        p_upper: ``(m,)`` upper confidence bound on the probability of every other class.
        abstain: ``(m,)`` bool, True where not even radius 0 is certified.
        n0, n, alpha: sample sizes and the overall error level.
        alpha_per_bound: level of each Clopper-Pearson bound (``alpha`` or ``alpha / C``).
    """

    predicted: np.ndarray
    runner_up: np.ndarray
    counts_selection: np.ndarray
    counts_estimation: np.ndarray
    p_lower: np.ndarray
    p_upper: np.ndarray
    abstain: np.ndarray
    n0: int
    n: int
    alpha: float
    alpha_per_bound: float
    metadata: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.counts_estimation.shape[1])

    @property
    def multiclass(self) -> bool:
        """True for more than two classes (certify with rho_lower > rho_upper)."""
        return self.n_classes > 2

    @property
    def certificate_p_upper(self) -> np.ndarray | None:
        """``p_upper`` for :func:`certify_grid` (None for binary tasks: rule rho > 0.5)."""
        return self.p_upper if self.multiclass else None

    def prediction(self) -> np.ndarray:
        """``(m,)`` smoothed prediction with ``-1`` where the classifier abstains."""
        return np.where(self.abstain, -1, self.predicted)

    def accuracy(self, labels: Any, index: Any = None) -> float:
        """Share of inputs (optionally ``index``) predicted correctly without abstaining."""
        labels = np.asarray(labels)
        if labels.shape != self.predicted.shape:
            raise ValueError(f"labels must have shape {self.predicted.shape}, got {labels.shape}")
        correct = (self.prediction() == labels)
        return float(correct.mean() if index is None else correct[np.asarray(index)].mean())

    def certify_grid(self, p_plus: float, p_minus: float, max_ra: int, max_rd: int
                     ) -> np.ndarray:
        """``(m, max_ra + 1, max_rd + 1)`` certified cells (abstentions certify nothing).

        Uses :func:`certlab.smoothing.certificate.certify_grid` with this result's bounds.
        """
        grid = np.asarray(certify_grid(self.p_lower, p_plus, p_minus, max_ra, max_rd,
                                       p_upper=self.certificate_p_upper), dtype=bool)
        return grid & ~self.abstain[:, None, None]


def _check_positive_int(value: Any, name: str) -> int:
    value = check_nonnegative_int(value, name)
    if value == 0:
        raise ValueError(f"{name} must be positive, got 0")
    return value


def _check_sample_sizes(n0: Any, n: Any, alpha: Any) -> tuple[int, int, float]:
    n0 = _check_positive_int(n0, "n0")
    n = _check_positive_int(n, "n")
    if n0 > n:
        raise ValueError(f"n0 (selection samples, {n0}) must not exceed n (estimation "
                         f"samples, {n}): the estimation sample sets the certificate")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise TypeError(f"alpha must be a number in (0, 1), got {alpha!r}")
    alpha = float(check_probability(alpha, "alpha", open_low=True, open_high=True))
    return n0, n, alpha


def smoothing_bounds(counts_selection: Any, counts_estimation: Any, alpha: float,
                     n0: int | None = None, n: int | None = None) -> SmoothingResult:
    """Confidence bounds and abstentions from vote counts.

    Args:
        counts_selection: ``(m, C)`` votes of the selection samples (picks ``y_A``).
        counts_estimation: ``(m, C)`` votes of the estimation samples (bounds).
        alpha: overall error probability in (0, 1); ``alpha / C`` per bound when ``C > 2``.
        n0, n: sample sizes; default to the row sums (which must then be constant).
    """
    sel = np.asarray(counts_selection)
    est = np.asarray(counts_estimation)
    if sel.ndim != 2 or est.shape != sel.shape:
        raise ValueError("counts_selection and counts_estimation must both have shape (m, C), "
                         f"got {sel.shape} and {est.shape}")
    if sel.shape[1] < 2:
        raise ValueError(f"need at least 2 classes, got {sel.shape[1]}")
    for arr, name in ((sel, "counts_selection"), (est, "counts_estimation")):
        if not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
            raise ValueError(f"{name} must hold non-negative integers")
    if sel.shape[0] == 0:
        raise ValueError("counts_selection and counts_estimation are empty (m = 0 inputs, "
                         f"shape {sel.shape}): there is nothing to bound")
    for arr, name, size, size_name in ((sel, "counts_selection", n0, "n0"),
                                       (est, "counts_estimation", n, "n")):
        if size is None and int(arr.sum(1).max()) == 0:
            raise ValueError(f"{name} holds no votes (every row adds up to 0); {size_name} is "
                             "taken from the row sums when not passed, and must be positive")
    n0 = int(sel.sum(1).max(initial=0)) if n0 is None else n0
    n = int(est.sum(1).max(initial=0)) if n is None else n
    n0, n, alpha = _check_sample_sizes(n0, n, alpha)
    if np.any(sel.sum(1) != n0) or np.any(est.sum(1) != n):
        raise ValueError("every row of the counts must add up to n0 (selection) / n (estimation)")
    m, n_classes = est.shape
    rows = np.arange(m)
    top = np.argmax(sel, axis=1)
    if n_classes == 2:
        alpha_b = alpha
        p_lower = np.asarray(clopper_pearson_lower(est[rows, top], n, alpha_b), dtype=float)
        p_upper = 1.0 - p_lower
        runner = 1 - top
    else:
        alpha_b = alpha / n_classes
        p_lower = np.asarray(clopper_pearson_lower(est[rows, top], n, alpha_b), dtype=float)
        others = est.astype(np.int64).copy()
        others[rows, top] = -1
        runner = np.argmax(others, axis=1)
        p_upper = np.asarray(clopper_pearson_upper(est[rows, runner], n, alpha_b), dtype=float)
        p_upper = np.minimum(p_upper, 1.0 - p_lower)
    p_lower = p_lower.reshape(m)
    p_upper = np.asarray(p_upper, dtype=float).reshape(m)
    return SmoothingResult(
        predicted=top.astype(np.int64), runner_up=np.asarray(runner, dtype=np.int64),
        counts_selection=sel.astype(np.int64), counts_estimation=est.astype(np.int64),
        p_lower=p_lower, p_upper=p_upper, abstain=~(p_lower > p_upper),
        n0=n0, n=n, alpha=alpha, alpha_per_bound=alpha_b)


def unanimous_bounds(n0: int, n: int, alpha: float, n_classes: int) -> SmoothingResult:
    """The bounds of one input whose every vote (all ``n0`` and all ``n``) goes to one class.

    No input can get a larger ``p_lower`` or a smaller ``p_upper`` with these sample sizes,
    so these bounds cap every certificate of a run: binary, ``p_lower = alpha ** (1 / n)``;
    with ``C > 2`` classes (Bonferroni), ``(alpha / C) ** (1 / n)``.

    Args:
        n0, n: selection and estimation sample sizes (``0 < n0 <= n``).
        alpha: overall error probability in (0, 1).
        n_classes: number of classes ``C >= 2``.

    Returns:
        A :class:`SmoothingResult` for ``m = 1`` input of class 0.
    """
    n0, n, alpha = _check_sample_sizes(n0, n, alpha)
    n_classes = check_nonnegative_int(n_classes, "n_classes")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    selection = np.zeros((1, n_classes), dtype=np.int64)
    estimation = np.zeros((1, n_classes), dtype=np.int64)
    selection[0, 0], estimation[0, 0] = n0, n
    return smoothing_bounds(selection, estimation, alpha, n0=n0, n=n)


def largest_certifiable_radius(n0: int, n: int, alpha: float, n_classes: int, p_plus: float,
                               p_minus: float, kind: str = "rd") -> int:
    """The largest radius that ANY input can certify with these sample sizes and noise.

    This is the true radius (:func:`~certlab.smoothing.certificate.max_certified_radius`,
    ``kind`` ``"rd"``, ``"ra"`` or ``"l0"``) of an input with a unanimous vote
    (:func:`unanimous_bounds`). The certified radius grows with ``p_lower`` and shrinks with
    ``p_upper``, so every input of a run with these ``n0, n, alpha`` and ``C`` certifies at
    most this radius: an average radius equal to it means the sample size, not the model,
    limits the certificate. ``-1`` if not even a unanimous vote certifies radius 0.
    """
    if kind not in ("rd", "ra", "l0"):
        raise ValueError(f"kind must be 'rd', 'ra' or 'l0', got {kind!r}")
    bounds = unanimous_bounds(n0, n, alpha, n_classes)
    radius = max_certified_radius(bounds.p_lower, p_plus, p_minus, kind=kind,
                                  p_upper=bounds.certificate_p_upper)
    return int(np.asarray(radius).reshape(-1)[0])


# ---------------------------------------------------------------------------------------------
# vote collection
# ---------------------------------------------------------------------------------------------
def sample_votes(forward: Callable[[int], torch.Tensor], n_inputs: int, n_samples: int,
                 batch_size: int, *, progress: bool = True, desc: str = "smoothing",
                 n_classes: int | None = None) -> np.ndarray:
    """Count the votes of ``n_samples`` noisy copies of ``n_inputs`` inputs.

    Args:
        forward: ``forward(b)`` draws ``b`` noisy copies and returns the base classifier's
            ``(b * n_inputs, C)`` logits (copy-major: row ``s * n_inputs + i``) or
            ``(b * n_inputs,)`` predicted labels.
        n_inputs: number of inputs ``m`` voted on per copy.
        n_samples: total number of noisy copies.
        batch_size: copies per forward pass.
        n_classes: number of classes ``C`` (inferred from the logits when None).

    Returns:
        ``(m, C)`` int64 vote counts (each row sums to ``n_samples``).
    """
    n_samples = check_nonnegative_int(n_samples, "n_samples")
    batch_size = _check_positive_int(batch_size, "batch_size")
    counts: torch.Tensor | None = None
    done = 0
    with tqdm(total=n_samples, desc=desc, disable=not progress, leave=False) as bar:
        while done < n_samples:
            b = min(batch_size, n_samples - done)
            out = forward(b)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"the model must return a torch.Tensor of logits or labels, "
                                f"got {type(out).__name__}")
            if out.is_floating_point() or out.is_complex():
                bad = ~torch.isfinite(out)
                if bool(bad.any()):
                    raise ValueError(
                        f"the model returned non-finite outputs (NaN or inf) for "
                        f"{int(bad.any(dim=-1).sum()) if out.dim() == 2 else int(bad.sum())} "
                        f"of {out.shape[0]} noisy inputs: its votes are meaningless, so no "
                        f"smoothed prediction or bound is given (check the model and its input)")
            if out.dim() == 2:
                n_classes = n_classes or int(out.shape[1])
                pred = out.argmax(dim=1)
            elif out.dim() == 1:
                if n_classes is None:
                    raise ValueError("n_classes is needed when forward returns labels")
                if out.is_floating_point() and not bool((out == out.round()).all()):
                    raise ValueError("the model returned non-integer labels "
                                     f"(e.g. {out[out != out.round()][:3].tolist()}); return "
                                     "(b * m, C) logits or integer class ids")
                pred = out.long()
            else:
                raise ValueError(f"forward({b}) must return (b * m, C) logits or (b * m,) "
                                 f"labels, got shape {tuple(out.shape)}")
            if pred.numel() != b * n_inputs:
                raise ValueError(f"forward({b}) returned {pred.numel()} predictions, "
                                 f"expected {b * n_inputs}")
            if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= n_classes):
                raise ValueError(f"forward({b}) predicted class {int(pred.max())} or "
                                 f"{int(pred.min())}, outside 0..{n_classes - 1} (n_classes="
                                 f"{n_classes})")
            ids = torch.arange(n_inputs, device=pred.device).repeat(b) * n_classes + pred
            batch_counts = torch.bincount(ids, minlength=n_inputs * n_classes)
            counts = batch_counts if counts is None else counts + batch_counts
            done += b
            bar.update(b)
    if counts is None:
        if n_classes is None:
            raise ValueError("n_classes is needed when n_samples is 0")
        return np.zeros((n_inputs, n_classes), dtype=np.int64)
    return counts.view(n_inputs, n_classes).cpu().numpy().astype(np.int64)


def _prepare(model: nn.Module, device: Any, seed: Any) -> tuple[torch.device, torch.Generator]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    dev = resolve_device(device)
    seed = check_nonnegative_int(seed, "seed")
    model.to(dev).eval()
    return dev, torch.Generator(device=dev).manual_seed(seed)


def _run(forward: Callable[[int], torch.Tensor], m: int, n0: int, n: int, alpha: float,
         batch_size: int, progress: bool, desc: str, n_classes: int | None,
         metadata: dict) -> SmoothingResult:
    with torch.inference_mode():
        sel = sample_votes(forward, m, n0, batch_size, progress=progress,
                           desc=f"{desc} (selection)", n_classes=n_classes)
        est = sample_votes(forward, m, n, batch_size, progress=progress,
                           desc=f"{desc} (estimation)", n_classes=sel.shape[1])
    result = smoothing_bounds(sel, est, alpha, n0=n0, n=n)
    result.metadata.update(metadata)
    return result


def smooth_nodes(model: nn.Module, attr: Any, edge_index: Any, *,
                 attr_noise: SparseNoise | tuple[float, float] | None = None,
                 graph_noise: SparseNoise | tuple[float, float] | None = None,
                 n0: int, n: int, alpha: float = 0.01, batch_size: int = 50,
                 device: Any = "auto", seed: int = 0, progress: bool = True,
                 n_classes: int | None = None) -> SmoothingResult:
    """Smoothed node classification: votes and bounds for all ``num_nodes`` nodes at once.

    Args:
        model: node classifier, ``model(x, edge_index) -> (B * num_nodes, C)`` logits; moved
            to ``device`` and put in eval mode.
        attr: node attributes ``(num_nodes, d)``: scipy sparse, torch (sparse or dense) or
            numpy; binary when ``attr_noise`` is given.
        edge_index: undirected graph ``(2, E)`` (both directions), or a scipy adjacency.
        attr_noise, graph_noise: :class:`SparseNoise` (or ``(p_plus, p_minus)``) for the
            attributes and the structure; None leaves that part clean. Both given: the joint
            randomization of the paper's Section 5.
        n0, n: selection and estimation samples (``n0 <= n``).
        alpha: overall error level in (0, 1).
        batch_size: noisy graphs per forward pass (reference: 50).
        device: "auto", "cpu", "cuda", ...; seed: seeds the noise generator.

    Returns:
        :class:`SmoothingResult` with ``m = num_nodes`` rows.
    """
    n0, n, alpha = _check_sample_sizes(n0, n, alpha)
    batch_size = _check_positive_int(batch_size, "batch_size")
    attr_noise = _check_noise(attr_noise, "attr_noise")
    graph_noise = _check_noise(graph_noise, "graph_noise")
    dev, gen = _prepare(model, device, seed)
    if attr_noise is not None:
        attr_index = binary_matrix_index(attr, "attr")
        num_nodes = attr_index.n_rows
    else:
        x_clean = attributes_to_torch(attr, dev)
        _check_finite_attributes(x_clean, "attr")
        num_nodes = int(x_clean.shape[0])
    if sp.issparse(edge_index):
        pairs = undirected_pairs(edge_index, num_nodes)
        ei_clean = pairs_to_edge_index(pairs, num_nodes).to(dev)
    else:
        ei_clean = _check_edge_index(edge_index, num_nodes, "edge_index").to(dev)
        pairs = undirected_pairs(ei_clean.cpu(), num_nodes) if graph_noise is not None else None
    cache: dict[tuple[str, int], torch.Tensor] = {}

    def forward(b: int) -> torch.Tensor:
        if attr_noise is not None:
            x = sample_attribute_noise(attr_index, attr_noise.p_plus, attr_noise.p_minus,
                                       n_samples=b, generator=gen)
        else:
            if ("x", b) not in cache:
                cache[("x", b)] = tile_attributes(x_clean, b)
            x = cache[("x", b)]
        if graph_noise is not None:
            ei = sample_graph_noise(pairs, num_nodes, graph_noise.p_plus, graph_noise.p_minus,
                                    n_samples=b, generator=gen)
        else:
            if ("e", b) not in cache:
                cache[("e", b)] = batch_edge_index(ei_clean, num_nodes, b)
            ei = cache[("e", b)]
        return model(x, ei)

    meta = {"task": "node", "attr_noise": attr_noise, "graph_noise": graph_noise,
            "batch_size": batch_size, "seed": seed, "device": str(dev)}
    return _run(forward, num_nodes, n0, n, alpha, batch_size, progress, "nodes", n_classes,
                meta)


def smooth_graphs(model: nn.Module, graphs: Sequence[Any], *,
                  graph_noise: SparseNoise | tuple[float, float] | None = None,
                  attr_noise: SparseNoise | tuple[float, float] | None = None,
                  n0: int, n: int, alpha: float = 0.01, batch_size: int = 50,
                  device: Any = "auto", seed: int = 0, progress: bool = True,
                  n_classes: int | None = None) -> SmoothingResult:
    """Smoothed graph classification for a list of graphs (one result row per graph).

    Args:
        model: ``model(x, edge_index, batch) -> (n_graphs_in_batch, C)`` logits.
        graphs: PyG ``Data`` objects (``x`` ``(n_i, d)``, undirected ``edge_index``); ``x``
            must be binary when ``attr_noise`` is given.
        graph_noise, attr_noise: noise on each graph's structure / node features.
        Other arguments as in :func:`smooth_nodes`. Each forward pass holds ``batch_size``
        noisy copies of every graph (graph ``g``, copy ``s`` has graph id ``s * m + g``).
    """
    n0, n, alpha = _check_sample_sizes(n0, n, alpha)
    batch_size = _check_positive_int(batch_size, "batch_size")
    graph_noise = _check_noise(graph_noise, "graph_noise")
    attr_noise = _check_noise(attr_noise, "attr_noise")
    if len(graphs) == 0:
        raise ValueError("graphs must not be empty")
    dev, gen = _prepare(model, device, seed)
    items = []
    for i, g in enumerate(graphs):
        x = torch.as_tensor(g.x).float()
        if x.dim() != 2:
            raise ValueError(f"graphs[{i}].x must have shape (n_i, d), got {tuple(x.shape)}")
        _check_finite_attributes(x, f"graphs[{i}].x")
        num_nodes = int(x.shape[0])
        ei = _check_edge_index(g.edge_index, num_nodes, f"graphs[{i}].edge_index")
        items.append({
            "n": num_nodes, "x": x.to(dev), "ei": ei.to(dev),
            "x_index": binary_matrix_index(x, "graph.x") if attr_noise is not None else None,
            "pairs": undirected_pairs(ei, num_nodes) if graph_noise is not None else None,
        })
    m = len(items)
    if len({int(it["x"].shape[1]) for it in items}) != 1:
        raise ValueError("all graphs must have the same number of node features (x.shape[1])")

    def forward(b: int) -> torch.Tensor:
        xs, eis, batch = [], [], []
        offset = 0
        for g_id, it in enumerate(items):
            if attr_noise is not None:
                x = sample_attribute_noise(it["x_index"], attr_noise.p_plus, attr_noise.p_minus,
                                           n_samples=b, generator=gen).to_dense()
            else:
                x = it["x"].repeat(b, 1)
            if graph_noise is not None:
                ei = sample_graph_noise(it["pairs"], it["n"], graph_noise.p_plus,
                                        graph_noise.p_minus, n_samples=b, generator=gen)
            else:
                ei = batch_edge_index(it["ei"], it["n"], b)
            xs.append(x)
            eis.append(ei + offset)
            batch.append(torch.arange(b, device=dev).repeat_interleave(it["n"]) * m + g_id)
            offset += b * it["n"]
        return model(torch.cat(xs), torch.cat(eis, dim=1), torch.cat(batch))

    meta = {"task": "graph", "attr_noise": attr_noise, "graph_noise": graph_noise,
            "batch_size": batch_size, "seed": seed, "device": str(dev)}
    return _run(forward, m, n0, n, alpha, batch_size, progress, "graphs", n_classes, meta)


def smooth_images(model: nn.Module, images: Any, noise: SparseNoise | tuple[float, float], *,
                  n0: int, n: int, alpha: float = 0.01, batch_size: int = 50,
                  device: Any = "auto", seed: int = 0, progress: bool = True,
                  n_classes: int | None = None) -> SmoothingResult:
    """Smoothed classification of binary images (e.g. binarized MNIST).

    Args:
        model: ``model(x) -> (b, C)`` logits for ``x`` of shape ``(b, 1, H, W)`` float.
        images: binary ``(m, H, W)`` array/tensor (see :func:`certlab.smoothing.image.binarize_images`).
        noise: :class:`SparseNoise` on the pixels (sampled sparsely; the noisy batch is made
            dense only as the CNN's input, ``batch_size * m * H * W`` floats).
        Other arguments as in :func:`smooth_nodes`.
    """
    n0, n, alpha = _check_sample_sizes(n0, n, alpha)
    batch_size = _check_positive_int(batch_size, "batch_size")
    noise = _check_noise(noise, "noise")
    if noise is None:
        raise ValueError("noise must be given for image smoothing")
    imgs = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if imgs.dim() != 3:
        raise ValueError(f"images must have shape (m, H, W), got {tuple(imgs.shape)}")
    m, h, w = (int(s) for s in imgs.shape)
    index = binary_matrix_index(imgs.reshape(m, h * w), "images")
    dev, gen = _prepare(model, device, seed)

    def forward(b: int) -> torch.Tensor:
        x = sample_attribute_noise(index, noise.p_plus, noise.p_minus, n_samples=b,
                                   generator=gen).to_dense()
        return model(x.view(b * m, 1, h, w))

    meta = {"task": "image", "noise": noise, "batch_size": batch_size, "seed": seed,
            "device": str(dev)}
    return _run(forward, m, n0, n, alpha, batch_size, progress, "images", n_classes, meta)
