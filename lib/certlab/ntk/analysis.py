"""Looking at NTKs: normalised kernels, kernel-target alignment, and the kernel SVM's accuracy.

Used by chapter 21 to compare architectures (Sabanayagam et al., ICLR 2025, Sec. 5: the
NTK-SVM is the infinitely wide GNN trained with the hinge loss, so its test accuracy is the
clean accuracy the certificates start from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["normalized_kernel", "kernel_target_alignment", "SVMEvaluation", "kernel_svm_accuracy"]


def _square(kernel, name: str = "kernel") -> np.ndarray:
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return k


#: A kernel counts as positive semi-definite when its smallest eigenvalue is at least
#: ``-PSD_TOLERANCE`` times its largest absolute eigenvalue (round-off of the closed forms).
PSD_TOLERANCE = 1e-8


def _check_psd(k: np.ndarray, name: str) -> None:
    """Refuse an asymmetric or indefinite kernel (the SVM dual is then not a convex QP)."""
    scale = max(float(np.abs(k).max(initial=0.0)), np.finfo(float).tiny)
    if np.abs(k - k.T).max(initial=0.0) > PSD_TOLERANCE * scale:
        raise ValueError(f"{name} must be symmetric, max |K - K^T| = "
                         f"{np.abs(k - k.T).max():.3g}")
    eig = np.linalg.eigvalsh(0.5 * (k + k.T))
    top = max(float(np.abs(eig).max(initial=0.0)), np.finfo(float).tiny)
    if eig[0] < -PSD_TOLERANCE * top:
        raise ValueError(f"{name} is not positive semi-definite (smallest eigenvalue "
                         f"{eig[0]:.3g}, largest {eig[-1]:.3g}): the SVM's dual is not convex, so "
                         "no accuracy is computed; use a valid (e.g. closed-form NTK) kernel")


def normalized_kernel(kernel) -> np.ndarray:
    """K_ij / sqrt(K_ii K_jj) (n, n), the cosine similarity of the NTK feature maps (0 where a
    diagonal entry is 0); makes kernels of different scale comparable in a heatmap."""
    k = _square(kernel)
    d = np.sqrt(np.maximum(np.diag(k), 0.0))
    scale = np.outer(d, d)
    return np.divide(k, scale, out=np.zeros_like(k), where=scale > 0)


def kernel_target_alignment(kernel, labels, *, centered: bool = True) -> float:
    """Alignment <K, y y^T>_F / (||K||_F ||y y^T||_F) of a kernel with labels y in {-1, +1}.

    Args:
        kernel: (n, n) kernel. labels: (n,) in {-1, +1}.
        centered: centre the kernel and the labels first (H K H and H y with
            H = I - 1 1^T / n; Cortes et al. 2012), so that a constant offset of the kernel
            (e.g. the bias term 1 1^T of APPNP / MLP) does not count; ``False`` gives the
            uncentred alignment of Cristianini et al. (2001).

    Returns:
        A value in [-1, 1]; 1 when the (centred) kernel is a positive multiple of y y^T.
    """
    k = _square(kernel)
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (k.shape[0],) or not np.all(np.isin(y, (-1.0, 1.0))):
        raise ValueError(f"labels must be a ({k.shape[0]},) array with values in {{-1, +1}}")
    if centered:
        k = k - k.mean(axis=0, keepdims=True)
        k = k - k.mean(axis=1, keepdims=True)
        y = y - y.mean()
    norm_k = np.linalg.norm(k)
    norm_y = float(y @ y)
    if norm_k == 0 or norm_y == 0:
        raise ValueError("the (centred) kernel or label vector is zero; alignment undefined")
    return float(y @ k @ y / (norm_k * norm_y))


@dataclass(frozen=True)
class SVMEvaluation:
    """Test accuracy of a bias-free kernel SVM.

    Attributes:
        accuracy: fraction of correctly predicted test nodes.
        C: the box bound used (given, or chosen by cross-validation).
        kkt_residual: KKT residual of the dual solve (accuracy certificate of the solver).
    """

    accuracy: float
    C: float
    kkt_residual: float


def kernel_svm_accuracy(kernel, labels, train, test, *, C: float | None = None,
                        n_folds: int = 4, seed: int = 0) -> SVMEvaluation:
    """Fit :func:`certlab.poisoning.svm.fit_svm` on ``train`` and score it on ``test``.

    Args:
        kernel: (n, n) NTK of all nodes.
        labels: (n,) labels ({-1, +1} or 0..c-1).
        train: int indices of the labeled nodes the SVM is trained on.
        test: int indices of the evaluated nodes.
        C: box bound; ``None`` chooses it by stratified ``n_folds``-fold cross-validation
            on ``train`` (:func:`certlab.poisoning.svm.select_C_cv`, the paper's grid).
        seed: cross-validation fold seed.
    """
    from certlab.poisoning.svm import fit_svm, select_C_cv

    k = _square(kernel)
    y = np.asarray(labels)
    if y.shape != (k.shape[0],):
        raise ValueError(f"labels must have shape ({k.shape[0]},), got {y.shape}")
    indices = []
    for idx, name in ((train, "train"), (test, "test")):
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer node indices, got dtype {idx.dtype} "
                            "(boolean masks and floats are not converted)")
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= k.shape[0]:
            raise ValueError(f"{name} must be a non-empty 1-d array of indices in [0, {k.shape[0]})")
        indices.append(idx.astype(np.int64))
    train, test = indices
    k_train = k[np.ix_(train, train)]
    _check_psd(k_train, "kernel (restricted to the train nodes)")
    if C is None:
        C, _ = select_C_cv(k_train, y[train], n_folds=n_folds, seed=seed)
    model = fit_svm(k_train, y[train], C)
    accuracy = float(np.mean(model.predict(k[np.ix_(test, train)]) == y[test]))
    return SVMEvaluation(accuracy=accuracy, C=float(C), kkt_residual=model.kkt_residual)
