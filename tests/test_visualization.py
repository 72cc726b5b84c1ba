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
    # the panel shows the channel sum normalized as Captum's _normalize_attr (outlier_perc 2)
    from captum.attr._utils.visualization import _normalize_attr

    r = maps["two"][1, 0]
    expected = torch.as_tensor(_normalize_attr(r.numpy(), "all", 2.0)).float()
    assert torch.allclose(torch.as_tensor(axes[1, 2].images[0].get_array()), expected)


def test_outlier_perc_saturates_the_top_values_by_hand():
    # Captum's rule: the scale is the smallest |value| whose cumulative sum (sorted ascending)
    # reaches (100 - outlier_perc) % of the total. |values| 1..10 sum to 55; with outlier_perc=10
    # the cumulative sums 45 (at 9) < 49.5 <= 55 (at 10): the scale is 10, nothing saturates.
    # With outlier_perc=20 (44 needed): 45 at 9, so the scale is 9 and |10| saturates.
    values = torch.arange(1.0, 11.0) * torch.tensor([1.0, -1.0] * 5)
    for outlier_perc, scale in ((10.0, 10.0), (20.0, 9.0)):
        fig, axes = visualize_attr_grid(torch.rand(1, 3, 1, 10), values.view(1, 1, 1, 10), sign="all",
                                        outlier_perc=outlier_perc)
        shown = torch.as_tensor(axes[0, 1].images[0].get_array())[0]
        assert torch.allclose(shown, (values / scale).clamp(-1, 1))


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


def _sanity_result():
    from captum_ext.metrics.sanity import SanityResult
    from captum_ext.metrics.similarity import MEASURES

    gen = torch.Generator().manual_seed(0)
    values = {m: torch.rand(3, 4, generator=gen, dtype=torch.float64) for m in MEASURES}
    values["ssim"][1, 2] = float("nan")
    kept = {"Saliency": torch.rand(3, 1, 8, 8, generator=gen)}
    return SanityResult(["original", "fc", "conv"], {"Saliency": values}, maps=kept)


def test_sanity_curves_plot_the_mean_over_images_per_stage(tmp_path):
    import matplotlib

    from captum_ext.visualization import plot_sanity_curves

    result = _sanity_result()
    backend = matplotlib.get_backend()
    fig = plot_sanity_curves(result)
    for ax, measure in zip(fig.axes, ("spearman_abs", "spearman", "ssim", "hog")):
        line = ax.get_lines()[0]
        assert line.get_ydata().tolist() == pytest.approx(result.curve("Saliency", measure).tolist())
    path = tmp_path / "curves.png"
    result.plot(str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend  # the library never switches the backend


def test_sanity_maps_show_the_kept_maps(tmp_path):
    from captum_ext.visualization import plot_sanity_maps

    result = _sanity_result()
    fig = plot_sanity_maps(result)
    assert len(fig.axes) == 3
    for j, ax in enumerate(fig.axes):
        assert torch.allclose(torch.as_tensor(ax.images[0].get_array()), result.maps["Saliency"][j, 0])
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["original", "fc", "conv"]
    from captum_ext.metrics.sanity import SanityResult

    with pytest.raises(ValueError, match="keep_maps"):
        plot_sanity_maps(SanityResult(["original"], {}))


def test_no_library_module_switches_the_matplotlib_backend():
    import pathlib

    import captum_ext

    root = pathlib.Path(captum_ext.__file__).parent
    for path in [root / "visualization.py", *sorted((root / "metrics").glob("*.py"))]:
        assert "matplotlib.use(" not in path.read_text(), path


def test_outlier_perc_normalises_as_captum():
    from captum.attr._utils.visualization import _normalize_attr

    values = torch.arange(1.0, 11.0) * torch.tensor([1.0, -1.0] * 5)
    fig, axes = visualize_attr_grid(torch.rand(1, 3, 1, 10), values.view(1, 1, 1, 10), sign="all",
                                    outlier_perc=10.0)
    shown = torch.as_tensor(axes[0, 1].images[0].get_array())[0]
    captum = _normalize_attr(values.view(1, 10, 1).numpy(), "all", 10.0)
    assert torch.allclose(shown, torch.as_tensor(captum).view(10).float())
