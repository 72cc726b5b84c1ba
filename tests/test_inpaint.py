"""Tests of captum_ext.inpaint: interface, exactness of the harmonic fill, adapters, errors."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
from torch import nn

from captum_ext.inpaint import (
    BiharmonicInpainter,
    BlurInpainter,
    ConstantInpainter,
    HarmonicInpainter,
    LearnedInpainter,
    MeanInpainter,
    NoiseInpainter,
    OpenCVInpainter,
    PullPushInpainter,
    apply_inpainter,
    get_inpainter,
    harmonic_fill,
    inpainter_names,
)
from captum_ext.inpaint import inpainters as inpainters_module


def exact_laplace(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Dense-free exact solve: 4-neighbour Laplace in the hole, Neumann at the image border."""
    height, width = hole.shape
    index = -np.ones((height, width), dtype=int)
    ys, xs = np.nonzero(hole)
    index[ys, xs] = np.arange(len(ys))
    rows, cols, vals = [], [], []
    rhs = np.zeros((len(ys), image.shape[0]))
    for k, (y, x) in enumerate(zip(ys, xs)):
        neighbours = [(y + dy, x + dx) for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))
                      if 0 <= y + dy < height and 0 <= x + dx < width]
        rows.append(k), cols.append(k), vals.append(len(neighbours))
        for yy, xx in neighbours:
            if hole[yy, xx]:
                rows.append(k), cols.append(index[yy, xx]), vals.append(-1.0)
            else:
                rhs[k] += image[:, yy, xx]
    matrix = sp.csc_matrix((vals, (rows, cols)), shape=(len(ys), len(ys)))
    solution = spl.spsolve(matrix, rhs).reshape(len(ys), -1)
    out = image.copy()
    out[:, ys, xs] = solution.T
    return out


def random_holes(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    holes = torch.zeros(batch, 1, height, width)
    for i in range(batch):
        y, x = torch.randint(0, height - 6, (2,), generator=gen).tolist()
        holes[i, :, y:y + 6, x:x + 7] = 1
    holes[0, :, -3:, :4] = 1  # one hole touching the border
    return holes


ALL_BUILTINS = [
    HarmonicInpainter(), PullPushInpainter(), ConstantInpainter(0.3), MeanInpainter(),
    BlurInpainter(2.0), NoiseInpainter(generator=torch.Generator().manual_seed(0)),
    OpenCVInpainter("telea"), OpenCVInpainter("ns"), BiharmonicInpainter(),
]


@pytest.mark.parametrize("inpainter", ALL_BUILTINS, ids=lambda i: type(i).__name__)
def test_known_pixels_unchanged_and_fill_independent_of_removed_content(inpainter):
    x = torch.randn(3, 3, 16, 18)
    holes = random_holes(3, 16, 18)
    other = torch.where(holes.bool(), torch.randn_like(x) * 100, x)  # different removed content
    if isinstance(inpainter, NoiseInpainter):
        inpainter.generator.manual_seed(0)
    out = inpainter(x, holes)
    if isinstance(inpainter, NoiseInpainter):
        inpainter.generator.manual_seed(0)
    out_other = inpainter(other, holes)
    keep = ~holes.bool().expand_as(x)
    assert torch.equal(out[keep], x[keep])
    assert torch.equal(out, out_other)  # also refuses NaN (NaN != NaN)
    assert not torch.equal(out, x)


def test_user_callable_goes_through_the_safe_path():
    seen = {}

    def peek(images, holes):
        seen["max_in_hole"] = float(images[holes.bool().expand_as(images)].abs().max())
        return images + 1.0

    x = torch.rand(2, 3, 8, 8) + 5
    holes = random_holes(2, 8, 8)
    holes[0] = 0
    holes[0, :, 2:4, 2:4] = 1
    out = apply_inpainter(peek, x, holes)
    assert seen["max_in_hole"] == 0.0
    keep = ~holes.bool().expand_as(x)
    assert torch.equal(out[keep], x[keep])
    assert torch.equal(out[~keep], torch.ones_like(out[~keep]))


def test_harmonic_matches_exact_sparse_solve(device, dtype):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 20, 23)).cumsum(1).cumsum(2) / 10  # smooth-ish random image
    hole = np.zeros((20, 23), dtype=bool)
    hole[4:13, 6:15] = True
    hole[15:, 0:5] = True  # touches the border: Neumann there
    x = torch.tensor(image, dtype=dtype, device=device)[None]
    image = x[0].cpu().double().numpy()  # the oracle solves for the dtype-rounded image
    expected = exact_laplace(image, hole)
    h = torch.tensor(hole, device=device)[None, None]
    # float32 cannot drive the SOR update below ~1e-7 (values up to ~2.6, one ulp ~2e-7): it
    # solves to 1e-6 and must match the sparse solve to 1e-5 (~40 ulp); float64 to 1e-9
    solver_tol, bound = (1e-12, 1e-9) if dtype == torch.float64 else (1e-6, 1e-5)
    converged = HarmonicInpainter(tol=solver_tol)(x, h)
    assert converged.dtype == dtype and converged.device.type == device.type
    assert np.abs(converged[0].cpu().double().numpy() - expected).max() < bound
    default = HarmonicInpainter()(x, h)[0].cpu().double().numpy()
    rmse = np.sqrt(((default - expected)[:, hole] ** 2).mean())
    assert rmse < 0.02 * (image.max() - image.min())


def test_crop_is_exact():
    x = torch.randn(4, 2, 30, 40, dtype=torch.float64)
    holes = random_holes(4, 30, 40, seed=3).bool()
    cropped = harmonic_fill(x, holes, tol=1e-12, crop=True)
    full = harmonic_fill(x, holes, tol=1e-12, crop=False)
    assert torch.allclose(cropped, full, atol=1e-9)


@pytest.mark.parametrize("converged", [True, False], ids=["tol", "sweeps30"])
def test_harmonic_fills_linear_ramp_exactly(converged, device, dtype):
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    ramp = torch.stack([0.3 * xs - 0.2 * ys + 1, 2 * ys]).unsqueeze(0).to(device, dtype)
    holes = torch.zeros(1, 1, 24, 24, device=device)
    holes[..., 5:17, 7:19] = 1
    # values reach 46, where one float32 ulp is ~4e-6: float32 solves to 1e-5 and must meet the
    # ramp to 1e-4 (~26 ulp); float64 solves to 1e-10 and meets it to 1e-7
    solver_tol, bound = (1e-10, 1e-7) if dtype == torch.float64 else (1e-5, 1e-4)
    inpainter = HarmonicInpainter(tol=solver_tol) if converged else HarmonicInpainter(sweeps=30)
    out = inpainter(ramp, holes)
    assert out.dtype == dtype and out.device.type == device.type
    assert torch.allclose(out, ramp, atol=bound if converged else 1e-2)


def test_harmonic_commutes_with_affine_normalisation():
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    holes = random_holes(2, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    inp = HarmonicInpainter()
    assert torch.allclose(inp((x - mean) / std, holes), (inp(x, holes) - mean) / std, atol=1e-12)


@pytest.mark.parametrize("inpainter", [PullPushInpainter(), MeanInpainter(), BlurInpainter(2.0),
                                       HarmonicInpainter(tol=1e-9)], ids=lambda i: type(i).__name__)
def test_batched_equals_one_by_one(inpainter):
    x = torch.randn(4, 3, 16, 20)
    holes = random_holes(4, 16, 20, seed=1)
    batched = inpainter(x, holes)
    single = torch.cat([inpainter(x[i:i + 1], holes[i:i + 1]) for i in range(4)])
    assert torch.allclose(batched, single, atol=1e-6)


def test_harmonic_uncropped_is_batch_independent():
    # the per-sample crop boxes share one size per batch, so at a fixed sweep count the
    # cropped solver agrees with one-by-one only to solver accuracy; uncropped it is exact
    x = torch.randn(4, 3, 16, 20)
    holes = random_holes(4, 16, 20, seed=1).bool()
    batched = harmonic_fill(x, holes, crop=False)
    single = torch.cat([harmonic_fill(x[i:i + 1], holes[i:i + 1], crop=False) for i in range(4)])
    assert torch.allclose(batched, single, atol=1e-6)
    cropped = harmonic_fill(x, holes)
    assert (cropped - single).abs().max() < 0.05 * (x.max() - x.min())


def test_all_hole_fallback():
    x = torch.randn(3, 3, 8, 8)
    holes = torch.zeros(3, 1, 8, 8)
    holes[1] = 1
    holes[2, :, :4] = 1
    for inpainter in (HarmonicInpainter(fallback=0.25), PullPushInpainter(fallback=0.25),
                      MeanInpainter(fallback=0.25), BlurInpainter(2.0, fallback=0.25)):
        out = inpainter(x, holes)
        assert torch.equal(out[1], torch.full_like(x[1], 0.25))
        assert torch.equal(out[0], x[0])
        # image 2 (top half a hole) is filled as usual: known half kept, and every fill is
        # a weighted mean of known pixels, so it lies in the known pixels' range per channel
        assert torch.equal(out[2, :, 4:], x[2, :, 4:])
        low, high = x[2, :, 4:].amin((1, 2)), x[2, :, 4:].amax((1, 2))
        fill = out[2, :, :4].flatten(1)
        assert ((fill >= low[:, None] - 1e-6) & (fill <= high[:, None] + 1e-6)).all()
    assert torch.equal(ConstantInpainter(-2.0)(x, holes)[1], torch.full_like(x[1], -2.0))
    out = apply_inpainter(lambda im, ho: im + 7, x, holes, fallback=torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1))
    assert torch.equal(out[1, 2], torch.full((8, 8), 3.0))


def test_no_hole_returns_input():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(HarmonicInpainter()(x, torch.zeros(2, 1, 8, 8)), x)


def test_mean_and_constant_values(device, dtype, tolerance):
    x = torch.zeros(1, 2, 4, 4, dtype=dtype, device=device)
    x[:, 0] = 2.0
    x[:, 1, :2] = 4.0
    holes = torch.zeros(1, 1, 4, 4, dtype=dtype, device=device)
    holes[..., 3, :] = 1
    out = MeanInpainter()(x, holes)
    assert out.dtype == dtype and out.device.type == device.type
    rtol, atol = tolerance(dtype)
    full = {"dtype": dtype, "device": device}
    torch.testing.assert_close(out[0, 0, 3], torch.full((4,), 2.0, **full), rtol=rtol, atol=atol)
    torch.testing.assert_close(out[0, 1, 3], torch.full((4,), 8.0 / 3, **full), rtol=rtol, atol=atol)
    per_channel = ConstantInpainter(torch.tensor([1.0, -1.0]).view(2, 1, 1))(x, holes)
    assert torch.equal(per_channel[0, :, 3], torch.tensor([[1.0] * 4, [-1.0] * 4], **full))


def test_noise_statistics():
    x = torch.randn(1, 1, 64, 64) * 2 + 3
    holes = torch.zeros(1, 1, 64, 64)
    holes[..., :, 32:] = 1
    out = NoiseInpainter(generator=torch.Generator().manual_seed(0))(x, holes)
    fill = out[..., 32:]
    assert abs(fill.mean() - x[..., :32].mean()) < 0.15
    assert abs(fill.std() - x[..., :32].std()) < 0.15


def test_get_inpainter():
    assert isinstance(get_inpainter("harmonic"), HarmonicInpainter)
    assert isinstance(get_inpainter("Pull-Push"), PullPushInpainter)
    assert get_inpainter("constant", value=0.5).value == 0.5
    assert get_inpainter("blur", sigma=3.0).sigma == 3.0
    assert isinstance(get_inpainter("telea"), OpenCVInpainter)
    fn = lambda im, ho: im  # noqa: E731
    assert get_inpainter(fn) is fn
    assert set(inpainter_names()) >= {"harmonic", "pull_push", "constant", "mean", "blur",
                                       "noise", "telea", "ns", "biharmonic"}
    with pytest.raises(ValueError, match="unknown inpainter 'lama'"):
        get_inpainter("lama")
    with pytest.raises(TypeError, match="inpainter"):
        get_inpainter(3)
    with pytest.raises(TypeError, match="options"):
        get_inpainter(fn, value=1)


def test_bad_holes_and_bad_outputs():
    x = torch.rand(2, 3, 8, 8)
    inp = HarmonicInpainter()
    with pytest.raises(ValueError, match=r"`holes` must have shape \(2, 1, 8, 8\)"):
        inp(x, torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="`holes` must have shape"):
        inp(x, torch.zeros(2, 1, 8, 7))
    with pytest.raises(ValueError, match="`holes` must be binary"):
        inp(x, torch.full((2, 1, 8, 8), 0.5))
    with pytest.raises(TypeError, match="`holes` must be a torch.Tensor"):
        inp(x, np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match="`images` must be 4-D"):
        inp(x[0], torch.zeros(1, 1, 8, 8))
    holes = torch.zeros(2, 1, 8, 8)
    holes[..., 2, 2] = 1
    with pytest.raises(ValueError, match=r"inpainter must return a tensor of shape \(2, 3, 8, 8\)"):
        apply_inpainter(lambda im, ho: im[:, :1], x, holes)
    with pytest.raises(ValueError, match="inpainter must return a tensor"):
        apply_inpainter(lambda im, ho: None, x, holes)
    with pytest.raises(TypeError, match="`inpainter` must be callable"):
        apply_inpainter("harmonic", x, holes)
    with pytest.raises(ValueError, match="`omega`"):
        HarmonicInpainter(omega=2.0)
    with pytest.raises(TypeError, match="`sweeps`"):
        HarmonicInpainter(sweeps=1.5)
    with pytest.raises(ValueError, match="`method`"):
        OpenCVInpainter("fast")


def test_missing_optional_backend_raises_clear_error(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name in ("cv2", "skimage.restoration"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ImportError, match="pip install opencv-python-headless"):
        OpenCVInpainter()
    with pytest.raises(ImportError, match="pip install scikit-image"):
        BiharmonicInpainter()
    with pytest.raises(ImportError, match="opencv"):
        get_inpainter("ns")


class _PadChecker(nn.Module):
    """A scripted 'network' that records its input size and fills the hole with 0.5."""

    def __init__(self, multiple: int):
        super().__init__()
        self.multiple = multiple

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if image.shape[-2] % self.multiple != 0 or image.shape[-1] % self.multiple != 0:
            raise RuntimeError("input not padded to the multiple")
        if mask.shape[1] != 1:
            raise RuntimeError("mask must have one channel")
        return image * (1 - mask) + 0.5 * mask


def test_learned_adapter_pads_crops_and_maps_ranges(tmp_path):
    scripted = torch.jit.script(_PadChecker(8))
    path = tmp_path / "net.pt"
    scripted.save(str(path))
    x = torch.rand(2, 3, 13, 21)
    holes = random_holes(2, 13, 21)
    out = LearnedInpainter(str(path), pad_multiple=8)(x, holes)
    assert out.shape == x.shape
    keep = ~holes.bool().expand_as(x)
    assert torch.equal(out[keep], x[keep])
    assert torch.allclose(out[~keep], torch.full_like(out[~keep], 0.5))
    # [-1, 1] network and ImageNet-normalised inputs: the model's 0.5 is 0.75 in [0, 1]
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    normed = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    out = LearnedInpainter(scripted, value_range=(-1, 1), mean=mean, std=std)(normed, holes)
    expected = (0.75 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(out, torch.where(holes.bool(), expected.expand_as(x), normed), atol=1e-6)
    with pytest.raises(Exception, match="not padded"):  # torch.jit.Error
        LearnedInpainter(scripted, pad_multiple=1)(x, holes)


def test_learned_adapter_formats_and_resize():
    class Concat(nn.Module):
        def forward(self, stacked):
            assert stacked.shape[1] == 5 and stacked.shape[-2:] == (32, 32)
            assert torch.equal(stacked[:, 3], torch.ones_like(stacked[:, 3]))
            return stacked[:, :3] * 0 + 1.0

    x = torch.rand(1, 3, 20, 24)
    holes = random_holes(1, 20, 24)
    out = LearnedInpainter(Concat(), value_range=(-1, 1), input_format="deepfill",
                           size=(32, 32))(x, holes)
    assert torch.allclose(out[holes.bool().expand_as(x)], torch.ones(int(holes.sum()) * 3))
    with pytest.raises(ValueError, match="the learned inpainter returned"):
        LearnedInpainter(lambda t: t[:, :2], input_format="concat")(x, holes)
    with pytest.raises(ValueError, match="`input_format`"):
        LearnedInpainter(Concat(), input_format="nchw")
    with pytest.raises(ValueError, match="`mean` and `std`"):
        LearnedInpainter(Concat(), mean=[0.5])


def test_constant_image_is_filled_with_the_constant_in_the_input_dtype(device, dtype, tolerance):
    # 1/3 is not a float32 number: a fill computed in float32 (or on another device and cast
    # back) misses the float64 constant by ~1e-8, far outside the float64 tolerance
    value = 1.0 / 3.0
    x = torch.full((2, 3, 16, 16), value, dtype=dtype, device=device)
    holes = torch.zeros(2, 1, 16, 16, dtype=torch.bool, device=device)
    holes[0, :, 4:9, 4:9] = True
    holes[1, :, 10:, :6] = True  # touches the border
    rtol, atol = tolerance(dtype)
    for inpainter in (HarmonicInpainter(), PullPushInpainter(), BlurInpainter(2.0),
                      MeanInpainter(), OpenCVInpainter()):
        out = inpainter(x, holes)
        assert out.dtype == dtype and out.device.type == device.type, type(inpainter).__name__
        torch.testing.assert_close(out, x, rtol=rtol, atol=atol, msg=type(inpainter).__name__)


def test_opencv_fill_stays_in_the_known_value_range():
    pytest.importorskip("cv2")
    from captum_ext.inpaint import get_inpainter

    x = torch.linspace(0, 1, 32).repeat(2, 3, 32, 1)  # horizontal ramps
    holes = torch.zeros(2, 1, 32, 32)
    holes[..., 10:20, 10:20] = 1
    for name in ("telea", "ns"):
        filled = get_inpainter(name)(x, holes)
        inside = filled[holes.expand_as(filled).bool()]
        assert inside.min() >= 0.25 and inside.max() <= 0.7, name  # between the hole's edges
        assert (filled - x).abs().max() < 0.15, name  # float32 input used to give errors near 2


# --- issue 13: all-hole images, NaN policy, bad parameters ----------------------------------


@pytest.mark.parametrize("inpainter", ALL_BUILTINS, ids=lambda i: type(i).__name__)
def test_every_builtin_survives_an_all_hole_image(inpainter):
    # biharmonic used to crash inside scikit-image on an image without a known pixel
    x = torch.randn(2, 3, 8, 8)
    holes = torch.zeros(2, 1, 8, 8)
    holes[0] = 1
    holes[1, :, 2:5, 2:5] = 1
    out = inpainter(x, holes)
    expected = inpainter.value if isinstance(inpainter, ConstantInpainter) else 0.0
    assert torch.equal(out[0], torch.full_like(x[0], expected))
    assert torch.equal(out[1][~holes[1].bool().expand(3, 8, 8)], x[1][~holes[1].bool().expand(3, 8, 8)])
    all_holes = torch.ones(2, 1, 8, 8)
    assert torch.equal(apply_inpainter(inpainter, x, all_holes, fallback=-3.0),
                       torch.full_like(x, expected if isinstance(inpainter, ConstantInpainter) else -3.0))


def test_callable_never_sees_an_all_hole_image_nor_the_hole_content():
    seen = []

    def spy(images, holes):
        seen.append((images.clone(), holes.clone()))
        return images + 1

    x = torch.rand(3, 2, 6, 6) + 5
    holes = torch.zeros(3, 1, 6, 6)
    holes[1] = 1
    holes[[0, 2], :, 1:3, 1:3] = 1
    out = apply_inpainter(spy, x, holes, fallback=9.0)
    (images, got_holes), = seen
    assert images.shape[0] == 2 and torch.equal(got_holes, holes[[0, 2]])
    assert torch.equal(images[got_holes.bool().expand_as(images)],
                       torch.zeros(int(got_holes.sum()) * 2))  # the hole is zeroed
    assert torch.equal(out[1], torch.full((2, 6, 6), 9.0))
    assert torch.equal(out[0, :, 1:3, 1:3], torch.ones(2, 2, 2))  # fill of the zeroed hole
    seen.clear()
    out = apply_inpainter(spy, x, torch.ones(3, 1, 6, 6))  # every image is all hole
    assert seen == [] and torch.equal(out, torch.zeros_like(x))


def test_nan_among_known_pixels_is_refused_but_a_nan_in_the_hole_is_ignored():
    x = torch.rand(1, 3, 8, 8)
    holes = torch.zeros(1, 1, 8, 8)
    holes[..., 2:4, 2:4] = 1
    marked = x.clone()
    marked[..., 2:4, 2:4] = float("nan")  # a caller may mark removed pixels with NaN
    for inpainter in (HarmonicInpainter(), MeanInpainter(), lambda im, ho: im * 0 + 1):
        clean = apply_inpainter(inpainter, x, holes)
        assert torch.equal(apply_inpainter(inpainter, marked, holes), clean)
        bad = x.clone()
        bad[0, 1, 0, 0] = float("nan")
        with pytest.raises(ValueError, match="`images` contains NaN or inf outside the hole"):
            apply_inpainter(inpainter, bad, holes)


@pytest.mark.parametrize("make", [
    lambda: ConstantInpainter(float("nan")), lambda: ConstantInpainter(torch.tensor([1.0, float("inf")])),
    lambda: HarmonicInpainter(omega=float("nan")), lambda: HarmonicInpainter(tol=float("nan")),
    lambda: BlurInpainter(float("inf")), lambda: NoiseInpainter(scale=float("nan")),
    lambda: MeanInpainter(fallback=float("nan")), lambda: OpenCVInpainter(radius=float("inf")),
])
def test_nan_and_inf_parameters_are_refused(make):
    with pytest.raises(ValueError, match="finite"):
        make()


# --- issue 14: one fill API -----------------------------------------------------------------


def test_resolve_inpainter_accepts_every_documented_form():
    from captum_ext.inpaint import Inpainter, resolve_inpainter

    x = torch.rand(2, 3, 6, 6)
    holes = torch.zeros(2, 1, 6, 6)
    holes[..., :3, :3] = 1
    assert torch.equal(apply_inpainter(resolve_inpainter(0.5), x, holes),
                       torch.where(holes.bool(), torch.tensor(0.5), x))
    per_channel = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    assert torch.equal(apply_inpainter(resolve_inpainter(per_channel), x, holes)[1, :, 0, 0],
                       torch.tensor([1.0, 2.0, 3.0]))
    assert isinstance(resolve_inpainter("harmonic"), HarmonicInpainter)
    inp = PullPushInpainter()
    assert resolve_inpainter(inp) is inp and isinstance(inp, Inpainter)
    fn = lambda im, ho: im  # noqa: E731
    assert resolve_inpainter(fn) is fn
    for bad, err in ((float("nan"), ValueError), (torch.tensor([float("inf")]), ValueError),
                     (True, TypeError), (None, TypeError), ([0.5], TypeError)):
        with pytest.raises(err, match="inpainter"):
            resolve_inpainter(bad)


def test_base_does_not_import_the_inpainters_module():
    """The interface (base.py) is imported by inpainters.py, never the other way round."""
    import ast
    import inspect

    from captum_ext.inpaint import base

    tree = ast.parse(inspect.getsource(base))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not any(name and name.startswith("captum_ext.inpaint") for name in imported)
    assert inpainters_module.Inpainter is base.Inpainter


def test_per_example_constant_selects_rows():
    value = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 2, 4, 4)
    const = ConstantInpainter(value)
    picked = const.for_examples(torch.tensor([2, 2, 0]))
    x = torch.rand(3, 2, 4, 4)
    out = picked(x, torch.ones(3, 1, 4, 4))
    assert out[:, 0, 0, 0].tolist() == [2.0, 2.0, 0.0]
    assert ConstantInpainter(1.0).for_examples(torch.tensor([0, 1])).value == 1.0
    with pytest.raises(ValueError, match="one per example"):
        const.for_examples(torch.tensor([3]))
