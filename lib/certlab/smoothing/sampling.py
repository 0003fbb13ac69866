"""Exact sparse samplers for the sparsity-aware randomization phi(x) of Bojchevski et al. (2020).

phi(x) flips every binary entry of ``x`` independently: a one becomes zero with probability
``p_minus`` and a zero becomes one with probability ``p_plus`` (Section 3 of the paper,
eq. (2)). Binary attribute matrices and undirected graphs are sparse, so the samplers here
never build a dense matrix:

* deletions are a Bernoulli(``p_minus``) mask over the stored ones;
* additions are drawn with *geometric skipping* over the zero cells: in an i.i.d.
  Bernoulli(``p_plus``) sequence the gaps between successive successes are i.i.d.
  Geometric(``p_plus``), so the cumulative sums of geometric gaps are exactly the ranks of
  the zeros that flip. The k-th zero (rank ``r``) is located without materialising the zero
  set: with the stored ones ``o_0 < o_1 < ...`` its cell is ``r + #{j : o_j - j <= r}`` (a
  ``searchsorted``). Time and memory are ``O(#ones + #additions)``, and every zero flips
  independently with probability ``p_plus`` (up to floating-point rounding of the uniforms).
  The reference implementation draws ``Binomial(#zeros, p_plus)`` cells *with* replacement
  and merges duplicates, which slightly under-samples additions; it is not reproduced here.

On the CPU, large inputs (at least ``_PER_COPY_MIN_WORK`` expected flips per copy, e.g. Cora-ML
attributes and structure) use a faster sampler with the same distribution
(:func:`_noisy_csr_numpy`, :func:`_noisy_pairs_numpy`), copy by copy so that all arrays stay in
the CPU cache, with random bits from a NumPy ``SFC64`` generator seeded from the torch generator:

* deletions compare 16-bit random words with ``p_minus`` and resolve the rare ties with 32 more
  bits, so ``P(delete) = floor(p_minus * 2**48) / 2**48`` (error below ``2**-48``);
* additions are the successes of a Bernoulli(``p_plus``) process over *all* cells of a copy
  (geometric gaps ``1 + floor(log(V) / log(1 - p_plus))``, ``V`` uniform on ``(0, 1]``), of
  which those that land on a one are discarded. Restricted to the zeros this is
  still an i.i.d. Bernoulli(``p_plus``) sequence, so the distribution is exactly that of phi,
  and no zero-rank -> cell search is needed. Whether a candidate is a one is read from a bitmap
  of the input (one bit per cell) when that bitmap is small (at most 4x the memory of the int64
  index of the ones, or 1 MiB), else by binary search in the ones: memory stays ``O(#ones)``.

Rows of the noisy attribute matrices are written as the kept columns followed by the added
columns (a counting merge per copy, no sort); its CSR indices are int32 where they fit. The
random streams differ between the paths (and from versions before this sampler), the
distribution does not: the statistical tests run every path.

Undirected graphs are perturbed on the pairs ``i < j`` only and mirrored, so the result is
symmetric and has no self-loops. ``n_samples`` independent noisy copies are returned as one
disjoint union (copy ``s`` uses node/row ids ``s * n + i``), ready for a single batched
forward pass. All randomness comes from a ``torch.Generator``, so results are seeded and the
sampling runs on the device of that generator (CPU or CUDA).

Why this module is hand-written: neither PyG nor scipy offers an exact sparse Bernoulli flip
sampler (PyG's ``dropout_edge``/``add_random_edge`` draw additions with replacement and a
fixed count).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from certlab.utils import check_nonnegative_int, check_probability

__all__ = [
    "SparseNoise",
    "BinaryMatrixIndex",
    "binary_matrix_index",
    "undirected_pairs",
    "flip_binary_cells",
    "sample_attribute_noise",
    "sample_graph_noise",
    "batch_attributes",
    "batch_edge_index",
    "pairs_to_edge_index",
    "csr_to_torch",
    "attributes_to_torch",
    "tile_attributes",
]


# ---------------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SparseNoise:
    """Flip probabilities of the sparsity-aware randomization phi (paper eq. (2)).

    Attributes:
        p_plus: probability that a zero becomes one (addition), in [0, 1].
        p_minus: probability that a one becomes zero (deletion), in [0, 1].
    """

    p_plus: float
    p_minus: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "p_plus", float(check_probability(self.p_plus, "p_plus")))
        object.__setattr__(self, "p_minus", float(check_probability(self.p_minus, "p_minus")))

    @property
    def is_identity(self) -> bool:
        """True when phi leaves every input unchanged (p_plus = p_minus = 0)."""
        return self.p_plus == 0.0 and self.p_minus == 0.0


def _check_noise(noise: Any, name: str) -> SparseNoise | None:
    if noise is None or isinstance(noise, SparseNoise):
        return noise
    if isinstance(noise, (tuple, list)) and len(noise) == 2:
        return SparseNoise(*noise)
    raise TypeError(f"{name} must be a SparseNoise, a (p_plus, p_minus) pair or None, "
                    f"got {type(noise).__name__}")


def _check_generator(generator: Any) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(check_nonnegative_int(generator, "generator"))
    if not isinstance(generator, torch.Generator):
        raise TypeError("generator must be a torch.Generator, a non-negative int seed or None, "
                        f"got {type(generator).__name__}")
    return generator


# ---------------------------------------------------------------------------------------------
# input conversion (never densifies a sparse input)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BinaryMatrixIndex:
    """A binary matrix as the sorted linear indices of its ones.

    Attributes:
        ones: int64 tensor ``(k,)``, strictly increasing, entries ``row * n_cols + col``.
        n_rows, n_cols: the matrix shape.
    """

    ones: torch.Tensor
    n_rows: int
    n_cols: int
    #: lookup tables of the CPU sampler, built on first use (not part of the value)
    _cpu_tables: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def n_cells(self) -> int:
        return self.n_rows * self.n_cols

    @property
    def nnz(self) -> int:
        return int(self.ones.numel())


def _check_binary_values(values: np.ndarray | torch.Tensor, name: str) -> None:
    vals = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if vals.numel() and not bool(((vals == 0) | (vals == 1)).all()):
        bad = vals[(vals != 0) & (vals != 1)][:3].tolist()
        raise ValueError(f"{name} must be binary (entries 0 or 1), found values such as {bad}")


def binary_matrix_index(matrix: Any, name: str = "attr") -> BinaryMatrixIndex:
    """Convert a binary matrix into :class:`BinaryMatrixIndex` without densifying it.

    Args:
        matrix: scipy sparse matrix/array, torch sparse (COO/CSR) tensor, or a dense 2-D
            torch/numpy array (already dense inputs are accepted as they are), shape
            ``(n_rows, n_cols)``. Stored entries must be 0 or 1; duplicate coordinates (a
            non-binary multiset) are an error.
        name: argument name used in error messages.
    """
    if isinstance(matrix, BinaryMatrixIndex):
        return matrix
    if sp.issparse(matrix):
        if matrix.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
        coo = sp.coo_matrix(matrix)
        _check_binary_values(coo.data, name)
        keep = coo.data != 0
        rows = torch.as_tensor(coo.row[keep].astype(np.int64))
        cols = torch.as_tensor(coo.col[keep].astype(np.int64))
        shape = coo.shape
    elif isinstance(matrix, torch.Tensor):
        if matrix.dim() != 2:
            raise ValueError(f"{name} must be 2-D, got shape {tuple(matrix.shape)}")
        if matrix.layout == torch.strided:
            _check_binary_values(matrix, name)
            rows, cols = torch.nonzero(matrix, as_tuple=True)
        else:
            coo = matrix.to_sparse_coo() if matrix.layout != torch.sparse_coo else matrix
            # no coalesce: duplicates must be detected, not summed away silently
            idx, vals = coo._indices(), coo._values()
            _check_binary_values(vals, name)
            keep = vals != 0
            rows, cols = idx[0, keep], idx[1, keep]
        rows, cols = rows.long().cpu(), cols.long().cpu()
        shape = tuple(matrix.shape)
    elif isinstance(matrix, np.ndarray):
        if matrix.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
        _check_binary_values(matrix, name)
        r, c = np.nonzero(matrix)
        rows, cols = torch.as_tensor(r.astype(np.int64)), torch.as_tensor(c.astype(np.int64))
        shape = matrix.shape
    else:
        raise TypeError(f"{name} must be a scipy sparse matrix, a torch tensor or a numpy array, "
                        f"got {type(matrix).__name__}")
    n_rows, n_cols = int(shape[0]), int(shape[1])
    lin = rows * n_cols + cols
    ones, counts = torch.unique(lin, sorted=True, return_counts=True)
    if ones.numel() and int(counts.max()) > 1:
        raise ValueError(f"{name} has duplicate entries (stored values add up above 1): "
                         "it must be binary")
    return BinaryMatrixIndex(ones=ones, n_rows=n_rows, n_cols=n_cols)


def _row_offsets(num_nodes: int) -> torch.Tensor:
    """S_i = number of pairs (a, b), a < b, with a < i, for i = 0..n-1 (int64, (n,))."""
    i = torch.arange(num_nodes, dtype=torch.int64)
    return i * (num_nodes - 1) - i * (i - 1) // 2


def undirected_pairs(edge_index: Any, num_nodes: int) -> torch.Tensor:
    """Validate an undirected binary graph and return its sorted pair ranks.

    Args:
        edge_index: int tensor/array ``(2, E)`` with both directions of every edge (PyG
            convention), or a scipy sparse adjacency ``(n, n)`` (symmetric, 0/1).
        num_nodes: number of nodes ``n``.

    Returns:
        int64 tensor ``(E / 2,)``: strictly increasing ranks ``t`` of the pairs ``i < j`` in
        row-major order of the strict upper triangle (``t = S_i + j - i - 1``).
    """
    n = check_nonnegative_int(num_nodes, "num_nodes")
    if sp.issparse(edge_index):
        if edge_index.shape != (n, n):
            raise ValueError(f"adjacency must have shape ({n}, {n}), got {edge_index.shape}")
        coo = sp.coo_matrix(edge_index)
        _check_binary_values(coo.data, "adjacency")
        keep = coo.data != 0
        ei = torch.as_tensor(np.stack([coo.row[keep], coo.col[keep]]).astype(np.int64))
    else:
        ei = torch.as_tensor(np.asarray(edge_index) if not isinstance(edge_index, torch.Tensor)
                             else edge_index)
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(ei.shape)}")
    if ei.is_floating_point() or ei.dtype == torch.bool:
        raise TypeError(f"edge_index must hold integers, got dtype {ei.dtype}")
    ei = ei.long().cpu()
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
        raise ValueError(f"edge_index has node ids outside [0, {n})")
    if bool((ei[0] == ei[1]).any()):
        raise ValueError("edge_index has self-loops: the graph sampler perturbs pairs i < j only")
    lin = torch.unique(ei[0] * n + ei[1], return_counts=True)
    if lin[0].numel() and int(lin[1].max()) > 1:
        raise ValueError("edge_index has duplicate edges: the graph must be binary")
    lo, hi = torch.minimum(ei[0], ei[1]), torch.maximum(ei[0], ei[1])
    pairs, counts = torch.unique(lo * n + hi, sorted=True, return_counts=True)
    if pairs.numel() and bool((counts != 2).any()):
        raise ValueError("edge_index must be undirected: every edge (i, j) needs its (j, i)")
    i, j = pairs // n, pairs % n
    return _row_offsets(n)[i] + (j - i - 1)


def _check_finite_attributes(x: torch.Tensor, name: str) -> None:
    """Refuse NaN/inf node attributes (dense or sparse torch tensor)."""
    if x.layout == torch.strided:
        values = x
    else:
        values = x._values() if x.layout == torch.sparse_coo else x.values()
    if values.is_floating_point() and values.numel() and not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} has NaN or infinite entries: a model's outputs on them are "
                         "meaningless, so no prediction, vote or bound is made")


def _check_edge_index(edge_index: Any, num_nodes: int, name: str) -> torch.Tensor:
    """A ``(2, E)`` int64 tensor of node ids in ``[0, num_nodes)``; float or bool ids are
    refused (never truncated)."""
    ei = edge_index if isinstance(edge_index, torch.Tensor) else \
        torch.as_tensor(np.asarray(edge_index))
    if ei.is_floating_point() or ei.is_complex() or ei.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer node ids, got dtype {ei.dtype} (float ids "
                        "are not truncated)")
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise ValueError(f"{name} must have shape (2, E), got {tuple(ei.shape)}")
    ei = ei.long()
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= num_nodes):
        raise ValueError(f"{name} has node ids outside [0, {num_nodes}): min {int(ei.min())}, "
                         f"max {int(ei.max())}")
    return ei


def pairs_to_edge_index(pairs: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Inverse of :func:`undirected_pairs` (one copy): ranks ``(m,)`` -> mirrored ``(2, 2m)``."""
    offsets = _row_offsets(num_nodes).to(pairs.device)
    i = torch.searchsorted(offsets, pairs, right=True) - 1
    j = pairs - offsets[i] + i + 1
    return torch.cat([torch.stack([i, j]), torch.stack([j, i])], dim=1)


# ---------------------------------------------------------------------------------------------
# the exact flip sampler
# ---------------------------------------------------------------------------------------------
def _geometric_ranks(n_zeros: int, p_plus: float, generator: torch.Generator,
                     device: torch.device) -> torch.Tensor:
    """Ranks in ``[0, n_zeros)`` of the successes of ``n_zeros`` i.i.d. Bernoulli(p_plus) trials.

    Uses i.i.d. Geometric(p_plus) gaps (inversion ``1 + floor(log U / log(1 - p))`` with
    float64 uniforms, so the gap distribution is exact down to tail probabilities ~1e-16)
    drawn in chunks of the expected count plus a margin; returns an increasing int64 tensor.
    """
    if n_zeros == 0 or p_plus == 0.0:
        return torch.empty(0, dtype=torch.int64, device=device)
    if p_plus == 1.0:
        return torch.arange(n_zeros, dtype=torch.int64, device=device)
    inv_log_q = 1.0 / math.log1p(-p_plus)
    chunks: list[torch.Tensor] = []
    position = -1  # rank of the last success so far
    while True:
        expected = (n_zeros - 1 - position) * p_plus
        size = int(expected + 6.0 * math.sqrt(expected) + 16)
        u = torch.rand(size, dtype=torch.float64, generator=generator, device=device)
        # U := 1 - u; gaps beyond the range are clamped before the integer cast (for tiny
        # p_plus the float gap exceeds int64), which leaves the ranks inside unchanged
        gaps = (torch.log1p_(u.neg_()).mul_(inv_log_q).clamp_(max=float(n_zeros + 1))
                .to(torch.int64).add_(1))
        ranks = torch.cumsum(gaps, 0).add_(position)
        n_inside = int(torch.searchsorted(ranks, n_zeros))  # ranks are strictly increasing
        chunks.append(ranks[:n_inside])
        if n_inside < size:
            break
        position = int(ranks[-1])
    return torch.cat(chunks)


def _zero_rank_to_cell(zeros_before: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """Cell of the zero with rank ``r``: ``r + #{j : ones_j - j <= r}``.

    ``zeros_before[j] = ones_j - j`` (non-decreasing) counts the zeros before the j-th one.
    On the CPU numpy's binary search is used: it reuses the previous position for increasing
    queries (about 2x faster than ``torch.searchsorted`` here).
    """
    if ranks.device.type == "cpu":
        found = torch.from_numpy(np.searchsorted(zeros_before.numpy(), ranks.numpy(),
                                                 side="right"))
    else:
        found = torch.searchsorted(zeros_before, ranks, right=True)
    return ranks + found


def _flip_parts(ones: torch.Tensor, n_cells: int, p_plus: float, p_minus: float,
                n_samples: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept ones, added ones) of ``n_samples`` noisy copies; each part globally sorted."""
    device = gen.device
    ones = ones.to(device=device, dtype=torch.int64)
    k = int(ones.numel())
    if k and (int(ones[0]) < 0 or int(ones[-1]) >= n_cells):
        raise ValueError(f"ones must lie in [0, n_cells={n_cells})")
    # deletions: Bernoulli(p_minus) over the stored ones of every copy
    if k and n_samples and p_minus < 1.0:
        copies = torch.arange(n_samples, dtype=torch.int64, device=device)
        kept = (ones.unsqueeze(0) + copies.unsqueeze(1) * n_cells).reshape(-1)
        if p_minus > 0.0:
            kept = kept[torch.rand(kept.numel(), dtype=torch.float64, generator=gen,
                                    device=device) >= p_minus]
    else:
        kept = torch.empty(0, dtype=torch.int64, device=device)
    # additions: flipped zeros of all copies, as ranks among the zeros of the union, then
    # mapped to cells copy by copy (the r-th zero is cell r + #{j : ones_j - j <= r})
    zeros_per_copy = n_cells - k
    ranks = _geometric_ranks(n_samples * zeros_per_copy, p_plus, gen, device)
    if ranks.numel() and k:
        zeros_before = ones - torch.arange(k, dtype=torch.int64, device=device)
        copy = ranks // zeros_per_copy
        local = ranks - copy * zeros_per_copy
        ranks = _zero_rank_to_cell(zeros_before, local) + copy * n_cells
    return kept, ranks


def flip_binary_cells(ones: torch.Tensor, n_cells: int, p_plus: float, p_minus: float, *,
                      n_samples: int = 1, generator: Any = None) -> torch.Tensor:
    """Apply phi to ``n_samples`` independent copies of a binary vector given by its ones.

    Args:
        ones: int64 tensor ``(k,)``, strictly increasing cell ids in ``[0, n_cells)``.
        n_cells: length of the binary vector.
        p_plus: probability that a zero cell becomes one.
        p_minus: probability that a one cell becomes zero.
        n_samples: number of independent copies.
        generator: ``torch.Generator`` (its device is used), an int seed, or None (seed 0).

    Returns:
        int64 tensor ``(k',)``, sorted, of the ones of the concatenation of the noisy copies:
        copy ``s`` occupies cells ``[s * n_cells, (s + 1) * n_cells)``.
    """
    p_plus = float(check_probability(p_plus, "p_plus"))
    p_minus = float(check_probability(p_minus, "p_minus"))
    n_samples = check_nonnegative_int(n_samples, "n_samples")
    n_cells = check_nonnegative_int(n_cells, "n_cells")
    kept, added = _flip_parts(ones, n_cells, p_plus, p_minus, n_samples,
                              _check_generator(generator))
    return torch.sort(torch.cat([kept, added])).values


def _merge_rows(kept: torch.Tensor, added: torch.Tensor, n_cols: int,
                n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR (crow ``(n_rows + 1,)``, cols) of the union of two sorted disjoint cell-id lists.

    A linear-time merge at row granularity (no sort): within a row the kept ones come first,
    then the additions, so columns are grouped by row but not sorted inside a row.
    """
    device = kept.device
    rows_k, rows_a = kept // n_cols, added // n_cols
    count_k = torch.bincount(rows_k, minlength=n_rows)
    count_a = torch.bincount(rows_a, minlength=n_rows)
    cum_k, cum_a = torch.cumsum(count_k, 0), torch.cumsum(count_a, 0)
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=device)
    crow[1:] = cum_k + cum_a
    cols = torch.empty(kept.numel() + added.numel(), dtype=torch.int64, device=device)
    pos_k = torch.arange(kept.numel(), device=device) + (cum_a - count_a)[rows_k]
    pos_a = torch.arange(added.numel(), device=device) + cum_k[rows_a]
    cols[pos_k] = kept - rows_k * n_cols
    cols[pos_a] = added - rows_a * n_cols
    return crow, cols


def _noisy_csr(index: BinaryMatrixIndex, p_plus: float, p_minus: float, n_samples: int,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR (crow, cols) of ``n_samples`` noisy copies of a binary matrix, built copy by copy.

    Same distribution as :func:`flip_binary_cells` (deletion mask over the ones, geometric
    skipping over the zeros), but the row grouping is a counting merge per copy on arrays of
    ``O(nnz)`` entries, which stay in cache (10-15% faster than one pass over all copies on
    Cora-ML attributes, measured on one CPU core).
    """
    device = gen.device
    n, d = index.n_rows, index.n_cols
    ones = index.ones.to(device)
    k = int(ones.numel())
    rows_ones, cols_ones = ones // d, ones % d
    zeros_per_copy = index.n_cells - k
    ranks = _geometric_ranks(n_samples * zeros_per_copy, p_plus, gen, device)
    cuts = torch.searchsorted(
        ranks, torch.arange(n_samples + 1, dtype=torch.int64, device=device) * zeros_per_copy
    ).tolist()
    zeros_before = ones - torch.arange(k, dtype=torch.int64, device=device)
    crows = [torch.zeros(1, dtype=torch.int64, device=device)]
    col_parts = []
    offset = 0
    for s in range(n_samples):
        if p_minus == 0.0 or k == 0:
            kept_rows, kept_cols = rows_ones, cols_ones
        elif p_minus == 1.0:
            kept_rows, kept_cols = rows_ones[:0], cols_ones[:0]
        else:
            keep = torch.rand(k, dtype=torch.float64, generator=gen, device=device) >= p_minus
            kept_rows, kept_cols = rows_ones[keep], cols_ones[keep]
        local = ranks[cuts[s]:cuts[s + 1]] - s * zeros_per_copy
        if k:
            local = _zero_rank_to_cell(zeros_before, local)
        add_rows = local // d
        add_cols = local - add_rows * d
        count_k = torch.bincount(kept_rows, minlength=n)
        count_a = torch.bincount(add_rows, minlength=n)
        cum_k, cum_a = torch.cumsum(count_k, 0), torch.cumsum(count_a, 0)
        total = int(kept_rows.numel() + add_rows.numel())
        cols = torch.empty(total, dtype=torch.int64, device=device)
        cols[torch.arange(kept_rows.numel(), device=device) + (cum_a - count_a)[kept_rows]] = \
            kept_cols
        cols[torch.arange(add_rows.numel(), device=device) + cum_k[add_rows]] = add_cols
        crows.append(cum_k + cum_a + offset)
        col_parts.append(cols)
        offset += total
    cols = torch.cat(col_parts) if col_parts else torch.empty(0, dtype=torch.int64,
                                                               device=device)
    return torch.cat(crows), cols


# ---------------------------------------------------------------------------------------------
# the CPU sampler for large inputs (same distribution, NumPy, copy by copy)
# ---------------------------------------------------------------------------------------------
#: Inputs with at least this many expected flips per copy (ones + expected additions) are
#: sampled copy by copy (cache-friendly); smaller ones in one vectorised pass over all copies.
_PER_COPY_MIN_WORK = 5_000
#: On the CPU the copy-by-copy path uses the NumPy sampler below (False: the torch one, which
#: is also what runs on CUDA).
_NUMPY_ON_CPU = True
#: The membership bitmap (one bit per cell) is used when it needs at most this many bytes per
#: stored one (32 = 4x the int64 index of the ones) or at most ``_BITMAP_MIN_BYTES``.
_BITMAP_BYTES_PER_ONE = 32
_BITMAP_MIN_BYTES = 1 << 20


@dataclass(frozen=True)
class _OnesLookup:
    """Sorted ones ``(k,)`` (int64, NumPy) of a binary vector of ``n_cells`` cells, with an
    optional bitmap ``(ceil(n_cells / 8),)`` uint8 for O(1) membership tests."""

    ones: np.ndarray
    n_cells: int
    bitmap: np.ndarray | None

    @classmethod
    def build(cls, ones: np.ndarray, n_cells: int) -> "_OnesLookup":
        ones = np.ascontiguousarray(ones, dtype=np.int64)
        n_bytes = (n_cells + 7) // 8
        bitmap = None
        if n_bytes <= max(_BITMAP_BYTES_PER_ONE * ones.size, _BITMAP_MIN_BYTES):
            bitmap = np.zeros(n_bytes, dtype=np.uint8)
            np.bitwise_or.at(bitmap, ones >> 3, np.left_shift(1, ones & 7).astype(np.uint8))
        return cls(ones=ones, n_cells=int(n_cells), bitmap=bitmap)

    def ones_among(self, cells: np.ndarray) -> np.ndarray:
        """Sorted int64 indices ``i`` at which ``cells[i]`` (int64, in ``[0, n_cells)``) is a one."""
        if self.ones.size == 0 or cells.size == 0:
            return np.empty(0, dtype=np.int64)
        if self.bitmap is not None:
            # bytes of the bitmap first (mostly zero for sparse inputs), then the bit itself
            candidates = np.flatnonzero(np.take(self.bitmap, cells >> 3))
            sub = np.take(cells, candidates)
            bits = np.take(self.bitmap, sub >> 3) >> (sub & 7).astype(np.uint8)
            return candidates[(bits & 1).view(np.bool_)]
        pos = np.searchsorted(self.ones, cells)
        np.minimum(pos, self.ones.size - 1, out=pos)
        return np.flatnonzero(np.take(self.ones, pos) == cells)


def _numpy_generator(gen: torch.Generator) -> np.random.Generator:
    """A NumPy ``SFC64`` generator seeded with 124 bits drawn from the torch generator."""
    words = torch.randint(0, 2**62, (2,), generator=gen, dtype=torch.int64).tolist()
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(words)))


def _bernoulli_thresholds(p: float) -> tuple[int, int]:
    """``(t16, t32)`` with ``t16 * 2**32 + t32 = floor(p * 2**48)`` (exact in float64)."""
    scaled = p * 65536.0  # exact: scaling by a power of two
    t16 = int(scaled)
    return t16, int((scaled - t16) * 4294967296.0)  # the fraction is exact as well


def _keep_mask(rng: np.random.Generator, k: int, p_minus: float) -> np.ndarray | None:
    """Boolean ``(k,)``: which ones survive (each deleted independently with ``p_minus``).

    A one is deleted iff the 48-bit uniform ``U = 0.w e`` (``w``: a 16-bit word, ``e``: 32
    more bits drawn only when ``w == t16``) is below ``t16 / 2**16 + t32 / 2**48``, so
    ``P(delete) = floor(p_minus * 2**48) / 2**48``. Returns None when nothing is deleted.
    """
    if p_minus == 0.0:
        return None
    if p_minus == 1.0:
        return np.zeros(k, dtype=bool)
    t16, t32 = _bernoulli_thresholds(p_minus)
    words = rng.bit_generator.random_raw((k + 3) // 4).view(np.uint16)[:k]
    keep = words > t16
    ties = np.flatnonzero(words == t16)
    if ties.size:
        extra = rng.bit_generator.random_raw(ties.size) & np.uint64(0xFFFFFFFF)
        keep[ties[extra >= np.uint64(t32)]] = True
    return keep


def _bernoulli_positions(n_cells: int, p: float, rng: np.random.Generator,
                         chunk: int | None = None) -> np.ndarray:
    """Sorted int64 positions of the successes of ``n_cells`` i.i.d. Bernoulli(p) trials.

    Gaps between successes are i.i.d. Geometric(p) on ``{1, 2, ...}``, drawn by inversion as
    ``1 + floor(log(V) / log(1 - p))`` with ``V = 1 - U`` uniform on ``(0, 1]`` (53-bit ``U``),
    so ``P(gap > g) = P(V <= (1 - p)**g) = (1 - p)**g`` (exact down to tail probabilities of
    about 1e-16), in chunks of the expected count plus a margin (or of ``chunk`` gaps, for tests
    of the continuation).
    """
    if n_cells == 0 or p == 0.0:
        return np.empty(0, dtype=np.int64)
    if p == 1.0:
        return np.arange(n_cells, dtype=np.int64)
    scale = 1.0 / math.log1p(-p)  # negative; log(V) <= 0
    chunks: list[np.ndarray] = []
    last = -1  # position of the last success so far
    while True:
        expected = (n_cells - 1 - last) * p
        size = int(expected + 6.0 * math.sqrt(expected) + 16) if chunk is None else chunk
        gaps = rng.random(size)
        np.subtract(1.0, gaps, out=gaps)  # V in (0, 1]
        np.log(gaps, out=gaps)
        gaps *= scale
        if -scale * 64.0 > n_cells:  # tiny p: keep huge gaps inside int64 (they end the copy)
            np.minimum(gaps, float(n_cells), out=gaps)
        pos = gaps.astype(np.int64)
        pos += 1
        np.cumsum(pos, out=pos)
        pos += last
        inside = int(np.searchsorted(pos, n_cells))  # positions are strictly increasing
        chunks.append(pos[:inside])
        if inside < size:
            break
        last = int(pos[-1])
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _added_cells(lookup: _OnesLookup, p_plus: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted cells of the zeros that become ones in one noisy copy (int64)."""
    added = _bernoulli_positions(lookup.n_cells, p_plus, rng)
    hits = lookup.ones_among(added)
    return np.delete(added, hits) if hits.size else added


def _expected_size(k: int, n_cells: int, p_plus: float, p_minus: float, n_samples: int) -> int:
    """Mean + 8 standard deviations (+ slack) of the total number of ones of the copies."""
    mean = k * (1.0 - p_minus) + (n_cells - k) * p_plus
    var = k * p_minus * (1.0 - p_minus) + (n_cells - k) * p_plus * (1.0 - p_plus)
    return int(n_samples * mean + 8.0 * math.sqrt(n_samples * var) + 1024)


def _cpu_tables(index: BinaryMatrixIndex) -> dict:
    if index._cpu_tables is None:
        ones = index.ones.cpu().numpy().astype(np.int64, copy=False)
        rows = ones // index.n_cols
        crow = np.searchsorted(rows, np.arange(index.n_rows + 1)).astype(np.int64)
        tables = {
            "lookup": _OnesLookup.build(ones, index.n_cells),
            "crow": crow,
            "cols": (ones - rows * index.n_cols).astype(
                np.int32 if index.n_cols < 2**31 else np.int64),
            "row_cells": np.arange(index.n_rows + 1, dtype=np.int64) * index.n_cols,
            "nonempty_rows": np.flatnonzero(np.diff(crow) > 0),
        }
        object.__setattr__(index, "_cpu_tables", tables)
    return index._cpu_tables


def _noisy_csr_numpy(index: BinaryMatrixIndex, p_plus: float, p_minus: float, n_samples: int,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR (crow ``(B * n + 1,)``, cols) of ``B = n_samples`` noisy copies, on the CPU.

    Per copy: the kept ones (:func:`_keep_mask`) and the added cells (:func:`_added_cells`) are
    both sorted, so a counting merge at row granularity writes each row as its kept columns
    followed by its added columns straight into one preallocated buffer (no sort, no final
    concatenation).
    """
    tables = _cpu_tables(index)
    lookup, crow_ones, cols_ones, row_cells = (tables["lookup"], tables["crow"],
                                               tables["cols"], tables["row_cells"])
    n, k = index.n_rows, index.nnz
    rng = _numpy_generator(gen)
    capacity = _expected_size(k, index.n_cells, p_plus, p_minus, n_samples)
    # int32 indices when they fit: half the memory traffic, and buffers below glibc's mmap
    # threshold (32 MiB) are reused between batches instead of being page-faulted in again
    index_dtype = np.int32 if max(capacity, index.n_cells) < 2**31 - 1 else np.int64
    out = np.empty(capacity, index_dtype)
    crow = np.zeros(n_samples * n + 1, dtype=np.int64)
    steps = np.arange(max(k, 1), dtype=np.int64)
    offset = 0
    nonempty = tables["nonempty_rows"]
    starts = crow_ones[nonempty]
    kept_cum_buffer = np.zeros(n + 1, dtype=np.int64)
    per_row_kept = np.zeros(n, dtype=np.int64)
    for s in range(n_samples):
        keep = _keep_mask(rng, k, p_minus)
        if keep is None:  # nothing deleted
            kept_cum, kept_cols = crow_ones, cols_ones
        else:
            kept_cum = kept_cum_buffer
            kept_cols = np.compress(keep, cols_ones)
            if k:  # kept ones per row: sums of the mask over the rows' segments
                per_row_kept[nonempty] = np.add.reduceat(keep.view(np.uint8), starts,
                                                         dtype=np.int64)
            np.cumsum(per_row_kept, out=kept_cum[1:])
        added = _added_cells(lookup, p_plus, rng)
        added_cum = np.searchsorted(added, row_cells)  # (n + 1,) additions before each row
        n_kept, n_added = int(kept_cum[-1]), int(added_cum[-1])
        if offset + n_kept + n_added > out.size:  # beyond mean + 8 sd: grow
            if offset + n_kept + n_added + out.size >= 2**31 - 1:
                index_dtype = np.int64
            out = np.concatenate([out[:offset].astype(index_dtype),
                                  np.empty(max(out.size, n_kept + n_added), index_dtype)])
        crow[1 + s * n:1 + (s + 1) * n] = kept_cum[1:] + added_cum[1:] + offset
        # kept one t of row r goes to offset + added_cum[r] + t
        pos = np.repeat(added_cum[:-1] + offset, np.diff(kept_cum))
        pos += steps[:n_kept]
        out[pos] = kept_cols
        # added one u of row r goes to offset + kept_cum[r + 1] + u
        per_row = np.diff(added_cum)
        pos = np.repeat(kept_cum[1:] + offset, per_row)
        pos += np.arange(n_added, dtype=np.int64)
        columns = np.empty(n_added, dtype=out.dtype)
        np.subtract(added, np.repeat(row_cells[:-1], per_row), out=columns,
                    casting="unsafe")  # cell -> column (< n_cols: fits the index dtype)
        out[pos] = columns
        offset += n_kept + n_added
    return (torch.from_numpy(crow.astype(out.dtype, copy=False)),
            torch.from_numpy(out[:offset]))


def _noisy_pairs_numpy(pairs: torch.Tensor, num_nodes: int, p_plus: float, p_minus: float,
                       n_samples: int, gen: torch.Generator) -> torch.Tensor:
    """edge_index ``(2, E')`` of ``n_samples`` noisy copies of an undirected graph, on the CPU.

    Copy-major like :func:`batch_edge_index` (copy ``s``: its pairs ``(i, j)``, then the
    mirrored ``(j, i)``; node ids ``s * n + i``), so message passing reads one copy at a time.
    """
    n = num_nodes
    n_pairs = n * (n - 1) // 2
    lookup = _OnesLookup.build(pairs.cpu().numpy(), n_pairs)
    offsets = np.arange(n, dtype=np.int64)
    offsets = offsets * (n - 1) - offsets * (offsets - 1) // 2  # S_i, see _row_offsets
    rng = _numpy_generator(gen)
    copies = []
    for _ in range(n_samples):
        keep = _keep_mask(rng, lookup.ones.size, p_minus)
        copies.append(lookup.ones if keep is None else np.compress(keep, lookup.ones))
        copies.append(_added_cells(lookup, p_plus, rng))
    ranks = np.concatenate(copies) if copies else np.empty(0, dtype=np.int64)
    i = np.searchsorted(offsets, ranks, side="right") - 1  # pair rank -> (i, j), i < j
    j = ranks - np.take(offsets, i) + i + 1
    ei = np.empty((2, 2 * ranks.size), dtype=np.int64)
    start = 0
    for s in range(n_samples):
        m = copies[2 * s].size + copies[2 * s + 1].size
        a, b = 2 * start, 2 * start + m
        ei[0, a:b] = i[start:start + m]
        ei[1, a:b] = j[start:start + m]
        ei[0, b:b + m] = ei[1, a:b]
        ei[1, b:b + m] = ei[0, a:b]
        ei[:, a:b + m] += s * n
        start += m
    return torch.from_numpy(ei)


def _use_per_copy(k: int, n_cells: int, p_plus: float) -> bool:
    return k + (n_cells - k) * p_plus >= _PER_COPY_MIN_WORK


def csr_to_torch(crow: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int],
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Build a torch sparse CSR tensor of ones (values of ``dtype``)."""
    values = torch.ones(cols.numel(), dtype=dtype, device=cols.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, size=shape, check_invariants=False)


def attributes_to_torch(attr: Any, device: Any = "cpu") -> torch.Tensor:
    """Node attributes as a float32 torch tensor; sparse inputs stay sparse (CSR).

    Args:
        attr: scipy sparse ``(n, d)`` (-> sparse CSR), numpy array or torch tensor (dense
            tensors become float32; torch sparse tensors are kept as they are).
        device: target device.
    """
    if sp.issparse(attr):
        csr = sp.csr_matrix(attr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                torch.as_tensor(csr.indptr.astype(np.int64)),
                torch.as_tensor(csr.indices.astype(np.int64)),
                torch.as_tensor(csr.data, dtype=torch.float32), size=csr.shape,
                check_invariants=False).to(device)
    if isinstance(attr, np.ndarray):
        return torch.as_tensor(attr, dtype=torch.float32, device=device)
    if isinstance(attr, torch.Tensor):
        return attr.float().to(device) if attr.layout == torch.strided else attr.to(device)
    raise TypeError(f"attr must be a scipy sparse matrix, numpy array or torch tensor, "
                    f"got {type(attr).__name__}")


def sample_attribute_noise(attr: Any, p_plus: float, p_minus: float, *, n_samples: int = 1,
                           generator: Any = None, dtype: torch.dtype = torch.float32
                           ) -> torch.Tensor:
    """Noisy copies phi(X) of a binary attribute matrix, stacked as a disjoint union.

    Args:
        attr: binary matrix ``(n, d)`` (scipy sparse, torch sparse/dense, numpy, or a
            :class:`BinaryMatrixIndex` to skip the validation on repeated calls).
        p_plus, p_minus: flip probabilities of zeros and ones.
        n_samples: number of independent noisy copies ``B``.
        generator: ``torch.Generator`` (sets the device), int seed or None (seed 0).
        dtype: value dtype of the returned tensor.

    Returns:
        torch sparse CSR tensor ``(B * n, d)`` of ones; rows ``s * n .. s * n + n - 1`` hold
        copy ``s``. Columns within a row are grouped but not necessarily sorted; the index
        dtype is int32 (CPU sampler, when the indices fit) or int64.
    """
    index = binary_matrix_index(attr, "attr")
    p_plus = float(check_probability(p_plus, "p_plus"))
    p_minus = float(check_probability(p_minus, "p_minus"))
    n_samples = check_nonnegative_int(n_samples, "n_samples")
    gen = _check_generator(generator)
    if not _use_per_copy(index.nnz, index.n_cells, p_plus):
        kept, added = _flip_parts(index.ones, index.n_cells, p_plus, p_minus, n_samples, gen)
        crow, cols = _merge_rows(kept, added, index.n_cols, n_samples * index.n_rows)
    elif gen.device.type == "cpu" and _NUMPY_ON_CPU:
        crow, cols = _noisy_csr_numpy(index, p_plus, p_minus, n_samples, gen)
    else:
        crow, cols = _noisy_csr(index, p_plus, p_minus, n_samples, gen)
    n_rows = n_samples * index.n_rows
    return csr_to_torch(crow, cols, (n_rows, index.n_cols), dtype)


def batch_attributes(attr: Any, n_copies: int, *, device: Any = "cpu",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n_copies`` clean copies of a binary attribute matrix as a sparse CSR ``(B * n, d)``."""
    index = binary_matrix_index(attr, "attr")
    n_copies = check_nonnegative_int(n_copies, "n_copies")
    ones = index.ones.to(device)
    lin = (ones.unsqueeze(0) + torch.arange(n_copies, device=device).unsqueeze(1)
           * index.n_cells).reshape(-1)
    crow, cols = _merge_rows(lin, lin[:0], index.n_cols, n_copies * index.n_rows)
    return csr_to_torch(crow, cols, (n_copies * index.n_rows, index.n_cols), dtype)


def tile_attributes(x: torch.Tensor, copies: int) -> torch.Tensor:
    """``copies`` stacked copies of (any, not only binary) attributes: ``(n, d)`` ->
    ``(copies * n, d)``; dense stays dense, torch sparse becomes sparse CSR."""
    copies = check_nonnegative_int(copies, "copies")
    if x.layout == torch.strided:
        return x.repeat(copies, 1)
    if x.layout != torch.sparse_csr:
        x = x.coalesce().to_sparse_csr() if x.layout == torch.sparse_coo else x.to_sparse_csr()
    crow, cols, values = x.crow_indices(), x.col_indices(), x.values()
    nnz = cols.numel()
    if copies * nnz >= 2**31 - 1:  # int32 indices would overflow
        crow, cols = crow.long(), cols.long()
    shift = torch.arange(copies, device=crow.device, dtype=crow.dtype).unsqueeze(1) * nnz
    crow_t = torch.cat([(crow[:-1].unsqueeze(0) + shift).reshape(-1),
                        torch.tensor([copies * nnz], device=crow.device, dtype=crow.dtype)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow_t, cols.repeat(copies), values.repeat(copies),
                                       size=(copies * x.shape[0], x.shape[1]),
                                       check_invariants=False)


def _copies_to_edge_index(lin: torch.Tensor, num_nodes: int) -> torch.Tensor:
    n_pairs = num_nodes * (num_nodes - 1) // 2
    copy = lin // n_pairs
    ei = pairs_to_edge_index(lin - copy * n_pairs, num_nodes)
    return ei + (copy * num_nodes).repeat(2).unsqueeze(0)


def sample_graph_noise(edge_index: Any, num_nodes: int, p_plus: float, p_minus: float, *,
                       n_samples: int = 1, generator: Any = None) -> torch.Tensor:
    """Noisy copies phi(A) of an undirected graph, as the edge_index of their disjoint union.

    Every pair ``i < j`` flips independently (edges deleted with ``p_minus``, non-edges
    added with ``p_plus``); the result is mirrored and has no self-loops.

    Args:
        edge_index: ``(2, E)`` with both directions of every edge, or a scipy adjacency.
            Pass the ranks from :func:`undirected_pairs` (a 1-D int64 tensor) to skip
            validation on repeated calls.
        num_nodes: ``n``.
        n_samples: number of noisy copies ``B``; copy ``s`` uses node ids ``s * n + i``.

    Returns:
        int64 tensor ``(2, E')`` on the generator's device (edge order unspecified; on the CPU
        for large graphs copy-major, each copy's pairs followed by their mirror images).
    """
    n = check_nonnegative_int(num_nodes, "num_nodes")
    if isinstance(edge_index, torch.Tensor) and edge_index.dim() == 1:
        pairs = edge_index
    else:
        pairs = undirected_pairs(edge_index, n)
    p_plus = float(check_probability(p_plus, "p_plus"))
    p_minus = float(check_probability(p_minus, "p_minus"))
    n_samples = check_nonnegative_int(n_samples, "n_samples")
    gen = _check_generator(generator)
    n_pairs = n * (n - 1) // 2
    if gen.device.type == "cpu" and _NUMPY_ON_CPU and _use_per_copy(int(pairs.numel()),
                                                                     n_pairs, p_plus):
        return _noisy_pairs_numpy(pairs, n, p_plus, p_minus, n_samples, gen)
    kept, added = _flip_parts(pairs, n_pairs, p_plus, p_minus, n_samples, gen)
    return _copies_to_edge_index(torch.cat([kept, added]), n)


def batch_edge_index(edge_index: torch.Tensor, num_nodes: int, n_copies: int) -> torch.Tensor:
    """Disjoint union of ``n_copies`` copies of a graph: ``(2, E)`` -> ``(2, B * E)``."""
    n_copies = check_nonnegative_int(n_copies, "n_copies")
    ei = torch.as_tensor(edge_index)
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(ei.shape)}")
    shift = torch.arange(n_copies, device=ei.device).repeat_interleave(ei.shape[1]) * num_nodes
    return ei.repeat(1, n_copies) + shift.unsqueeze(0)
