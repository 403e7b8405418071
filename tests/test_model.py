"""The student backbone's neighbourhoods: k nearest points, and the dilated ones of the layers after the first."""

import numpy as np
import pytest
import torch

from partdistill_cli.student.model import DGCNN, knn_indices


def _line(n: int) -> torch.Tensor:
    """(1, 3, n) points on the x axis at 0, 1, 4, 9, ... (all pairwise distances distinct)."""
    x = torch.tensor(np.arange(n, dtype=np.float32) ** 2)
    return torch.stack([x, torch.zeros(n), torch.zeros(n)])[None]


def test_knn_indices_are_the_nearest_points_nearest_first():
    idx = knn_indices(_line(6), 3)[0].numpy()
    assert idx.shape == (6, 3)
    assert (idx[:, 0] == np.arange(6)).all()  # each point is its own nearest
    # point 2 (at 4): 1 (at 1, distance 3), then 0 (at 0, distance 4); 3 (at 9) is 5 away
    assert idx[2].tolist() == [2, 1, 0]
    assert idx[5].tolist() == [5, 4, 3]


def _neighbourhoods(model: DGCNN, x: torch.Tensor) -> list[np.ndarray]:
    """The neighbour indices each EdgeConv of `model` receives on `x`."""
    seen: list[np.ndarray] = []
    hooks = [
        conv.register_forward_pre_hook(lambda _m, args: seen.append(args[1][0].numpy().copy()))
        for conv in model.edge_convs
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def test_layers_after_the_first_see_every_dilation_th_of_the_k_times_dilation_nearest():
    x = torch.cat([_line(12), torch.zeros(1, 3, 12)], dim=1)  # xyz + (zero) normals
    near = knn_indices(x[:, :3], 6)[0].numpy()
    plain = _neighbourhoods(DGCNN(6, 2, k=3, widths=(8, 8, 8), global_dim=8, head=(8,)), x)
    dilated = _neighbourhoods(DGCNN(6, 2, k=3, widths=(8, 8, 8), global_dim=8, head=(8,), dilation=2), x)
    for idx in (*plain, dilated[0]):
        assert (idx == near[:, :3]).all()
    for idx in dilated[1:]:
        assert (idx == near[:, ::2]).all()
        assert not (idx == near[:, :3]).all()


def test_dilation_widens_what_a_point_depends_on():
    x = torch.cat([_line(40), torch.zeros(1, 3, 40)], dim=1)
    x[:, 0] /= x[:, 0].max()
    out = {}
    for d in (1, 2):
        torch.manual_seed(0)
        model = DGCNN(6, 2, k=3, widths=(8, 8, 8), global_dim=8, head=(8,), dilation=d).eval()
        out[d] = model(x).detach()
    assert out[1].shape == out[2].shape == (1, 2, 40)
    assert not torch.allclose(out[1], out[2])


def test_dilation_must_be_positive():
    from partdistill_cli.student import DistillConfig

    with pytest.raises(ValueError, match="dilation"):
        DistillConfig(dilation=0)
