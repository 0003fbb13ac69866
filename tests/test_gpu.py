"""The CUDA code paths: the same results on a GPU as on the CPU (skipped without a GPU).

CI has no GPU; these tests run where one is present (``pytest tests/test_gpu.py`` on a
machine with CUDA). Each compares a GPU computation with the CPU one: exact agreement where
the computation is exact (votes of a deterministic model, verdicts of complete verification),
agreement to float32 round-off for bounds and kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")]


def _small_graph(seed: int = 0):
    from certlab.graphs.csbm import sample_csbm

    graph = sample_csbm(60, seed=seed)
    features = (np.asarray(graph.features) > 0).astype(np.float32)
    return graph, features


def test_smoothing_votes_of_a_deterministic_model_are_identical_on_gpu():
    from certlab.smoothing.monte_carlo import smooth_nodes

    graph, features = _small_graph()

    class FirstFeature(nn.Module):
        """Class 1 where the node's first attribute survives the noise, else class 0."""

        def forward(self, x, edge_index):
            first = (x.to_dense() if x.is_sparse or x.layout != torch.strided else x)[:, 0]
            return torch.stack([1 - first, first], dim=1).float()

    kwargs = dict(attr_noise=(0.0, 0.0), n0=20, n=50, alpha=0.01, batch_size=10, seed=0,
                  progress=False, n_classes=2)
    cpu = smooth_nodes(FirstFeature(), features, graph.adj, device="cpu", **kwargs)
    gpu = smooth_nodes(FirstFeature(), features, graph.adj, device="cuda", **kwargs)
    np.testing.assert_array_equal(cpu.counts_estimation, gpu.counts_estimation)
    np.testing.assert_array_equal(cpu.p_lower, gpu.p_lower)


def test_smoothing_with_real_noise_gives_valid_bounds_on_gpu():
    from certlab.graphs.models import node_model
    from certlab.smoothing.monte_carlo import smooth_nodes

    graph, features = _small_graph()
    model = node_model("gcn", features.shape[1], 2)
    result = smooth_nodes(model, features, graph.adj, attr_noise=(0.01, 0.6), n0=20, n=100,
                          alpha=0.01, batch_size=25, device="cuda", seed=0, progress=False)
    share = result.counts_estimation.max(axis=1) / 100
    assert np.all(np.isfinite(result.p_lower)) and np.all(result.p_lower <= share + 1e-12)


def _random_mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3)).eval()


@pytest.mark.parametrize("method", ["ibp", "crown", "alpha-crown"])
def test_bounds_on_gpu_match_the_cpu(method):
    from certlab.verification.lirpa import bounds

    net = _random_mlp(0)
    x = torch.rand(1, 6, generator=torch.Generator().manual_seed(1))
    cpu = bounds(net, x, 0.05, method)
    gpu = bounds(net.cuda(), x.cuda(), 0.05, method)
    torch.testing.assert_close(gpu.logits.lower.cpu(), cpu.logits.lower, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu.logits.upper.cpu(), cpu.logits.upper, atol=1e-4, rtol=1e-4)


def test_verify_on_gpu_never_contradicts_the_cpu_or_the_exact_milp():
    from certlab.verification.verify import verify

    decided = 0
    for seed in range(6):
        net = _random_mlp(seed)
        x = torch.rand(6, generator=torch.Generator().manual_seed(seed))
        label = int(net(x[None]).argmax())
        for eps in (0.02, 0.1):
            exact = verify(net, x, label, eps, method="milp", timeout=60).status
            cpu = verify(net, x, label, eps, method="bab", timeout=60).status
            gpu = verify(net.cuda(), x.cuda(), label, eps, method="bab", timeout=60).status
            net.cpu()
            for status in (cpu, gpu):
                assert {status, exact} != {"verified", "falsified"}, (seed, eps, status, exact)
            decided += gpu in ("verified", "falsified")
            assert gpu == cpu or "timeout" in (gpu, cpu) or "unknown" in (gpu, cpu)
    assert decided >= 6, "the GPU decided too few properties to compare"


def test_empirical_ntk_on_gpu_matches_the_cpu():
    from certlab.ntk.empirical import width_convergence

    graph, _ = _small_graph(1)
    kwargs = dict(widths=[64], seeds=[0], depth=2)
    cpu = width_convergence(graph.adj, graph.features, "gcn", device="cpu", **kwargs)
    gpu = width_convergence(graph.adj, graph.features, "gcn", device="cuda", **kwargs)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-6, atol=1e-8)


def test_adversarial_training_runs_on_gpu():
    from certlab.verification.models import mlp
    from certlab.verification.training import fast_adversarial_training

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 8, 8, generator=gen)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    net = mlp(64, [32], num_classes=2)
    history = fast_adversarial_training(net, (x, y), 0.05, epochs=2, lr=0.05, batch_size=64,
                                        seed=0, device="cuda", progress=False)
    assert next(net.parameters()).device.type == "cuda"
    assert all(np.isfinite(history.loss))
