"""GNN models, sparse inputs, noise-augmented training (certlab.graphs) and the MNIST parts
(certlab.smoothing.image), on small synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from certlab.graphs.models import APPNP, GAT, GCN, GIN, SparseInputLinear, node_model
from certlab.graphs.training import (
    evaluate_graph_classifier,
    evaluate_node_classifier,
    train_graph_classifier,
    train_node_classifier,
)
from certlab.smoothing.image import BinaryMNISTCNN, binarize_images
from certlab.smoothing.sampling import batch_attributes, batch_edge_index


def _two_block_graph(n_per_block=30, d=16, seed=0):
    """Two communities; attribute j < d/2 is on mostly in block 0, j >= d/2 in block 1."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_block
    labels = np.repeat([0, 1], n_per_block)
    same = labels[:, None] == labels[None, :]
    prob = np.where(same, 0.2, 0.01)
    upper = np.triu(rng.random((n, n)) < prob, 1)
    adj = sp.csr_matrix((upper | upper.T).astype(np.float32))
    half = d // 2
    attr = np.zeros((n, d), dtype=np.float32)
    for i, y in enumerate(labels):
        cols = rng.choice(half, 3, replace=False) + half * y
        attr[i, cols] = 1
    return sp.csr_matrix(attr), adj, labels


@pytest.mark.parametrize("cls", [GCN, GAT, APPNP])
def test_node_models_sparse_equals_dense_and_batched(cls):
    attr, adj, _ = _two_block_graph()
    torch.manual_seed(0)
    model = cls(attr.shape[1], 3).eval()
    ei = torch.as_tensor(np.stack(adj.nonzero())).long()
    x_sparse = batch_attributes(attr, 2)
    x_dense = x_sparse.to_dense()
    ei2 = batch_edge_index(ei, attr.shape[0], 2)
    out_sparse, out_dense = model(x_sparse, ei2), model(x_dense, ei2)
    assert out_sparse.shape == (2 * attr.shape[0], 3)
    torch.testing.assert_close(out_sparse, out_dense, rtol=1e-5, atol=1e-5)
    # a disjoint union of two copies gives each copy the single-graph output
    single = model(torch.as_tensor(attr.toarray()), ei)
    torch.testing.assert_close(out_dense[: attr.shape[0]], single, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_dense[attr.shape[0]:], single, rtol=1e-5, atol=1e-5)


def test_sparse_input_linear_gradients_and_layouts():
    torch.manual_seed(0)
    lin = SparseInputLinear(5, 3)
    x = torch.tensor([[0.0, 1, 0, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 2, 0]])
    ref = x @ lin.weight + lin.bias
    for inp in (x, x.to_sparse(), x.to_sparse_csr()):
        torch.testing.assert_close(lin(inp), ref)
    lin(x.to_sparse_csr()).sum().backward()
    torch.testing.assert_close(lin.weight.grad, x.sum(0, keepdim=True).T.expand(5, 3))
    with pytest.raises(ValueError, match="shape"):
        lin(torch.zeros(2, 4))


def test_gat_has_eight_heads_and_appnp_defaults():
    gat = GAT(10, 3)
    assert gat.conv1.heads == 8 and gat.conv1.out_channels == 8
    appnp = APPNP(10, 3)
    assert appnp.propagation.K == 10 and appnp.propagation.alpha == pytest.approx(0.15)
    assert isinstance(node_model("GCN", 10, 3), GCN)
    with pytest.raises(ValueError, match="unknown node model"):
        node_model("mlp", 10, 3)
    with pytest.raises(ValueError, match="divisible"):
        GAT(10, 3, hidden=10, heads=8)
    with pytest.raises(ValueError, match="dropout"):
        GCN(10, 3, dropout=1.0)
    with pytest.raises(TypeError, match="hidden"):
        GCN(10, 3, hidden=6.5)


def test_training_learns_with_noise_and_is_deterministic():
    attr, adj, labels = _two_block_graph()
    rng = np.random.default_rng(1)
    idx = rng.permutation(labels.size)
    train, val, test = idx[:10], idx[10:20], idx[20:]

    def run():
        torch.manual_seed(123)  # training must not depend on the global state
        model = GCN(attr.shape[1], 2, hidden=16)
        res = train_node_classifier(model, attr, adj, labels, train, val,
                                    attr_noise=(0.01, 0.3), graph_noise=(0.001, 0.3), lr=1e-2,
                                    max_epochs=60, patience=20, device="cpu", seed=5)
        return model, res

    m1, r1 = run()
    m2, r2 = run()
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert r1.history == r2.history
    assert r1.epochs_run <= 60 and 0 <= r1.best_epoch < r1.epochs_run
    assert r1.best_val_loss == min(r1.history["val_loss"])
    assert evaluate_node_classifier(m1, attr, adj, labels, test, device="cpu") >= 0.85


def test_training_validates_arguments():
    attr, adj, labels = _two_block_graph()
    model = GCN(attr.shape[1], 2)
    ok = dict(device="cpu", max_epochs=1)
    with pytest.raises(ValueError, match="idx_train"):
        train_node_classifier(model, attr, adj, labels, [999], [0], **ok)
    with pytest.raises(ValueError, match="labels"):
        train_node_classifier(model, attr, adj, labels[:-1], [0], [1], **ok)
    with pytest.raises(ValueError, match="lr"):
        train_node_classifier(model, attr, adj, labels, [0], [1], lr=-1.0, **ok)
    with pytest.raises(ValueError, match="patience"):
        train_node_classifier(model, attr, adj, labels, [0], [1], patience=0, device="cpu")
    with pytest.raises(ValueError, match="binary"):
        train_node_classifier(model, attr * 2, adj, labels, [0], [1], attr_noise=(0.1, 0.1),
                              **ok)


def _graph_dataset(n_graphs=40, seed=0):
    """Class 0: paths, class 1: stars (same number of nodes); one constant feature."""
    rng = np.random.default_rng(seed)
    graphs = []
    for g in range(n_graphs):
        n = int(rng.integers(5, 9))
        y = g % 2
        if y == 0:
            e = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
        else:
            e = torch.stack([torch.zeros(n - 1, dtype=torch.long), torch.arange(1, n)])
        graphs.append(Data(x=torch.ones(n, 1), edge_index=torch.cat([e, e.flip(0)], 1),
                           y=torch.tensor([y])))
    return graphs


def test_gin_graph_classification_training():
    graphs = _graph_dataset()
    model = GIN(1, 2, hidden=16, n_layers=2)
    out = model(graphs[0].x, graphs[0].edge_index)
    assert out.shape == (1, 2)
    res = train_graph_classifier(model, graphs[:30], graphs[30:], graph_noise=(0.0, 0.1),
                                 lr=1e-2, batch_size=10, max_epochs=40, patience=40,
                                 device="cpu", seed=0)
    assert res.epochs_run == 40
    assert evaluate_graph_classifier(model, graphs[30:], device="cpu") >= 0.9


def test_binarize_threshold_and_reference_bug():
    imgs = np.array([[0, 1, 127, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(binarize_images(imgs), [[0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(binarize_images(imgs, scale="uint8_reference"), [[0, 1, 1, 1, 1]])
    np.testing.assert_array_equal(binarize_images(imgs / 255.0), [[0, 0, 0, 1, 1]])
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        binarize_images(np.array([2.0]))
    with pytest.raises(ValueError, match="threshold"):
        binarize_images(imgs, threshold=1.5)
    with pytest.raises(TypeError, match="dtype"):
        binarize_images(np.array([1, 2], dtype=np.int64))


def test_mnist_cnn_shapes():
    torch.manual_seed(0)
    cnn = BinaryMNISTCNN().eval()
    x = torch.as_tensor(binarize_images(np.random.default_rng(0).integers(0, 256, (4, 28, 28),
                                                                   dtype=np.uint8)))
    assert cnn(x.float().unsqueeze(1)).shape == (4, 10)
    assert cnn(x).shape == (4, 10)
    with pytest.raises(ValueError, match="shape"):
        cnn(torch.zeros(2, 1, 14, 14))


def test_train_image_classifier_with_noise_is_seeded():
    from certlab.smoothing.image import train_image_classifier

    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), dtype=np.uint8)
    labels = np.arange(40) % 2
    images[labels == 1, 5:20, 10:14] = 1  # class 1: a vertical bar
    images |= (rng.random(images.shape) < 0.02).astype(np.uint8)

    def run():
        torch.manual_seed(1)
        cnn = BinaryMNISTCNN(n_classes=2, hidden=16)
        losses = train_image_classifier(cnn, images, labels, noise=(0.01, 0.3), epochs=3,
                                        batch_size=16, lr=3e-3, device="cpu", seed=4)
        return cnn, losses

    (c1, l1), (c2, l2) = run(), run()
    assert l1 == l2 and len(l1) == 3
    for a, b in zip(c1.state_dict().values(), c2.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="binary"):
        train_image_classifier(c1, images * 2, labels, noise=(0.1, 0.1), device="cpu")
    with pytest.raises(ValueError, match="labels"):
        train_image_classifier(c1, images, labels[:-1], device="cpu")


def test_float_edge_ids_and_non_finite_inputs_are_refused():
    from certlab.graphs.training import predict_nodes

    attr, adj, labels = _two_block_graph()
    coo = sp.coo_matrix(adj)
    ei = np.stack([coo.row, coo.col])
    model = GCN(attr.shape[1], 2)
    assert predict_nodes(model, attr, ei, device="cpu").shape == (attr.shape[0],)
    with pytest.raises(TypeError, match="edge_index must hold integer node ids"):
        predict_nodes(model, attr, ei + 0.5, device="cpu")  # was truncated to ei
    with pytest.raises(ValueError, match="node ids outside"):
        predict_nodes(model, attr, ei + attr.shape[0], device="cpu")
    bad = sp.csr_matrix(attr, dtype=np.float32, copy=True)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="attr has NaN"):
        predict_nodes(model, bad, ei, device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite logits"):
        predict_nodes(model, attr, ei, device="cpu")
    graphs = [Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 0]]).float(),
                   y=torch.tensor([0]))]
    with pytest.raises(TypeError, match=r"graphs\[0\].edge_index must hold integer"):
        evaluate_graph_classifier(GIN(2, 2), graphs, device="cpu")
