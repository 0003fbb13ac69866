"""auto_LiRPA 0.3 on numpy 2 / torch 2.13: the compatibility patches and the patched import.

auto_LiRPA 0.3 (Xu et al., 2020; the only release on the package registry) was written for
torch < 1.13 and numpy 1, so importing it on the pinned stack needs four small patches,
applied (idempotently) by :func:`apply_compatibility_patches` *before* the import:

1. ``numpy.lib.arraysetops`` is gone in numpy 2: give numpy.lib a shim module with ``isin``.
2. ``torch.onnx.symbolic_helper._set_opset_version`` is gone: set the opset on the TorchScript
   exporter's ``GLOBALS`` instead.
3. ``torch._C.Node.__getitem__`` (attribute access ``node[k]``) is gone: dispatch on
   ``node.kindOf(k)`` (``node.i(k)``, ``node.f(k)``, ``node.s(k)``, ``node.t(k)``, ...).
4. ``BoundedModule._named_members`` must accept (and ignore) the keyword ``remove_duplicate``
   that torch 2.13 passes (needed for ``net.parameters()`` and ``conv_mode='matrix'``).

Importing this module applies the patches and exposes the patched package as
:data:`auto_LiRPA` (and ``BoundedModule``, ``BoundedTensor``, ``PerturbationLpNorm``). It
imports nothing else from certlab, so every other verification module can depend on it
without an import cycle.
"""

from __future__ import annotations

import contextlib
import io
import sys
import types
import warnings
from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["apply_compatibility_patches", "auto_LiRPA", "quiet", "default_dtype"]


def apply_compatibility_patches() -> None:
    """Apply the four auto_LiRPA 0.3 compatibility patches (safe to call repeatedly).

    Patches 1-3 must run before ``import auto_LiRPA``; patch 4 needs the imported package and
    is applied by this function when auto_LiRPA has already been imported.
    """
    # 1. numpy.lib.arraysetops.isin (removed in numpy 2).
    if "numpy.lib.arraysetops" not in sys.modules:
        try:
            import numpy.lib.arraysetops  # noqa: F401  (numpy 1)
        except ImportError:
            shim = types.ModuleType("numpy.lib.arraysetops")
            shim.isin = np.isin
            sys.modules["numpy.lib.arraysetops"] = shim
            np.lib.arraysetops = shim  # type: ignore[attr-defined]

    # 2. torch.onnx.symbolic_helper._set_opset_version (removed in torch 2.x).
    import torch.onnx.symbolic_helper as symbolic_helper

    if not hasattr(symbolic_helper, "_set_opset_version"):
        def _set_opset_version(opset_version: int) -> None:
            from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

            GLOBALS.export_onnx_opset_version = opset_version

        symbolic_helper._set_opset_version = _set_opset_version  # type: ignore[attr-defined]

    # 3. torch._C.Node.__getitem__ (attribute access by name, removed in torch 2.x).
    if not hasattr(torch._C.Node, "__getitem__"):
        def _node_getitem(node: Any, key: str) -> Any:
            return getattr(node, node.kindOf(key))(key)

        torch._C.Node.__getitem__ = _node_getitem  # type: ignore[attr-defined]

    # 4. BoundedModule._named_members(remove_duplicate=...) (torch 2.13 passes the keyword).
    if "auto_LiRPA" in sys.modules:
        from auto_LiRPA.bound_general import BoundedModule

        original = BoundedModule._named_members
        if not getattr(original, "_certlab_patched", False):
            def _named_members(self, get_members_fn, prefix="", recurse=True,
                               remove_duplicate: bool = True):
                return original(self, get_members_fn, prefix=prefix, recurse=recurse)

            _named_members._certlab_patched = True  # type: ignore[attr-defined]
            BoundedModule._named_members = _named_members


# auto_LiRPA calls warnings.simplefilter("once") when imported, which would override the
# warning filters of the whole process; catch_warnings restores them after the import. The
# import's own warnings (torch.jit.script deprecations from its operators) are recorded and
# dropped rather than printed into every notebook.
with warnings.catch_warnings(record=True):
    apply_compatibility_patches()
    import auto_LiRPA  # noqa: E402  (must follow the patches)
    from auto_LiRPA import BoundedModule, BoundedTensor  # noqa: E402
    from auto_LiRPA.perturbations import PerturbationLpNorm  # noqa: E402

    apply_compatibility_patches()  # patch 4 needs the imported package


@contextlib.contextmanager
def quiet():
    """Silence auto_LiRPA's prints and the tracing warnings of torch.jit / ONNX export."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Make ``dtype`` torch's default dtype inside the block and restore the previous one.

    auto_LiRPA 0.3 allocates some buffers of the alpha-CROWN optimisation (its best bounds)
    with the default dtype, so bounding a float64 model needs float64 as the default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
