import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from captum_ext.visualization import SIGN_CMAPS, reduce_attr, visualize_attr_grid


def test_reduce_attr_signs():
    a = torch.tensor([[[[2.0, -1.0]], [[-3.0, 0.5]]]])  # (1, 2, 1, 2)
    assert reduce_attr(a, "all").tolist() == [[[-1.0, -0.5]]]
    assert reduce_attr(a, "absolute_value").tolist() == [[[5.0, 1.5]]]
    assert reduce_attr(a, "positive").tolist() == [[[2.0, 0.5]]]
    assert reduce_attr(a, "negative").tolist() == [[[3.0, 1.0]]]


def test_grid_layout_and_colour_maps():
    images = torch.rand(3, 3, 8, 8)
    maps = {"one": torch.randn(3, 3, 8, 8), "two": torch.randn(3, 1, 8, 8)}
    fig, axes = visualize_attr_grid(images, maps, sign="all", titles=["a", "b", "c"])
    assert axes.shape == (3, 3)
    assert axes[0, 1].get_title() == "one"
    assert axes[1, 2].images[0].get_cmap().name == SIGN_CMAPS["all"]
    lo, hi = axes[1, 2].images[0].get_clim()
    assert (lo, hi) == (-1.0, 1.0)


def test_shared_scale_uses_one_scale_per_row():
    images = torch.rand(1, 3, 4, 4)
    small = torch.ones(1, 1, 4, 4)
    fig, axes = visualize_attr_grid(images, {"big": 10 * small, "small": small}, shared_scale=True)
    shown_small = axes[0, 2].images[0].get_array()
    assert float(shown_small.max()) == pytest.approx(0.1)


def test_bad_input():
    with pytest.raises(ValueError, match="sign"):
        visualize_attr_grid(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), sign="both")
    with pytest.raises(ValueError, match="do not match"):
        visualize_attr_grid(torch.rand(1, 3, 4, 4), torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="images"):
        visualize_attr_grid(torch.rand(3, 4, 4), torch.rand(1, 3, 4, 4))
