"""The book's chapters: where each lives, what it reproduces, and its paper-scale parameters.

The introduction renders its "how to rerun" table from this registry and each chapter's
``parameters`` cell (:func:`certlab.run.chapter_defaults`); a test checks that every
paper-scale name is a real parameter of its chapter and that every chapter file is listed.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .provenance import repo_root

__all__ = ["Chapter", "CHAPTERS", "existing_chapters", "chapter", "paper_scale_command"]


@dataclass(frozen=True)
class Chapter:
    """A chapter notebook.

    Attributes:
        stem: file name without suffix, ``notebooks/<stem>.py``.
        part: the book part (``"Introduction"``, ``"I"``, ``"II"``, ``"III"``, ``"IV"``).
        title: short title.
        paper_scale: parameter values that reproduce the paper's scale (GPU recommended).
    """

    stem: str
    part: str
    title: str
    paper_scale: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return repo_root() / "notebooks" / f"{self.stem}.py"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("00_introduction", "Introduction", "What a robustness certificate is",
            {"n_samples": 100_000, "n_repeats": 2000}),
    Chapter("11_smoothing_certificate", "I", "The certificate, step by step"),
    Chapter("12_smoothing_node_classification", "I", "Node classification on Cora-ML",
            {"n0": 1000, "n": 100000, "alpha": 0.01, "max_epochs": 3000, "patience": 50,
             "lr": 0.001, "max_ra": 6, "max_rd": 20}),
    Chapter("13_smoothing_beyond_nodes", "I", "Graph classification and binarized MNIST",
            {"n0": 1000, "n": 100000, "alpha": 0.01, "gin_epochs": 300,
             "mnist_train_images": 60000, "mnist_test_images": 10000, "mnist_epochs": 10,
             "max_radius": 20}),
    Chapter("21_ntk_gnn_kernels", "II", "From wide GNNs to kernels",
            {"widths": [16, 64, 256, 1024, 4096, 16384], "n_init_seeds": 10}),
    Chapter("22_label_flip_certificates", "II", "Sample-wise and collective certificates",
            {"n_seeds": 5, "collective_seeds": 5, "milp_budgets": [1, 2, 3],
             "collective_architectures": ["GCN", "SGC", "APPNP", "GIN", "GraphSAGE",
                                          "GCN skip-alpha", "GCN skip-PC", "MLP"]}),
    Chapter("31_ensemble_certificates", "III", "ScaLabelCert and EnsembleCert",
            {"n_train": 0, "n_test": 0, "n_parts": [10, 50, 100, 500, 1000], "ridge_sweep": []}),
    Chapter("41_bounds_and_bab", "IV", "Bounds, unstable neurons and branch and bound",
            {"n_train": 60000, "epochs": 200, "hidden": [512, 512], "n_images": 1000,
             "n_verify": 1000, "max_domains": 0, "timeout": 300.0}),
    Chapter("42_linearity_grafting", "IV", "Linearity grafting on MNIST",
            {"architecture": "convbig", "image_size": 28, "n_train": 60000, "epochs": 200,
             "eps_warmup": 0.0, "batch_size": 128, "finetune_epochs": 100,
             "n_significance": 1000, "n_test": 9000, "n_instability": 1000,
             "attack_steps": 100, "attack_restarts": 100, "n_verify": 1000, "max_domains": 0,
             "timeout": 300.0}),
    Chapter("90_benchmarks", "Reference", "Benchmarks"),
)


def chapter(stem: str) -> Chapter:
    """The registered chapter with this notebook stem (``KeyError`` if there is none)."""
    for c in CHAPTERS:
        if c.stem == stem:
            return c
    raise KeyError(f"no chapter {stem!r} in certlab.chapters.CHAPTERS")


def paper_scale_command(stem: str, width: int = 88) -> str:
    """The shell command that runs a chapter at its paper scale, wrapped at ``width``
    characters with backslash continuations (for a ``bash`` block in the book); an argument
    longer than a line gets a line of its own.

    Every value is written as JSON and shell-quoted when needed (``-p architecture
    '"convbig"'``, ``-p n_parts '[10, 50]'``), which ``python -m certlab.run`` reads back
    as the same Python value.
    """
    if width < 20:
        raise ValueError(f"width must be at least 20, got {width}")
    args = [f"-p {name} {shlex.quote(json.dumps(value))}"
            for name, value in chapter(stem).paper_scale.items()]
    lines, line = [], f"python -m certlab.run notebooks/{stem}.py"
    for arg in args:
        if len(line) + 1 + len(arg) + 2 > width:  # room for " \\"
            lines.append(line + " \\")
            line = "    " + arg
        else:
            line += " " + arg
    return "\n".join([*lines, line])


def existing_chapters() -> list[Chapter]:
    """The registered chapters whose notebook file exists."""
    return [c for c in CHAPTERS if c.path.is_file()]
