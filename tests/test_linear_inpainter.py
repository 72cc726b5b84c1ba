"""ROAD's noisy linear imputation against a direct sparse solve of its equations (scipy)."""

import numpy as np
import pytest
import torch
from scipy.sparse import lil_matrix
from scipy.sparse.linalg import spsolve

from captum_ext.inpaint import get_inpainter
from captum_ext.inpaint.linear import NoisyLinearInpainter, solve_linear_imputation

DIRECT, DIAGONAL = 1 / 6, 1 / 12


def _scipy_imputation(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The paper's equations, one row per removed pixel: x_i = sum_j w_ij x_j / sum_j w_ij over the
    in-image neighbours j (removed or known), solved directly. image (C, H, W), hole (H, W) bool."""
    channels, height, width = image.shape
    missing = np.argwhere(hole)
    index = -np.ones((height, width), dtype=int)
    index[hole] = np.arange(len(missing))
    matrix = lil_matrix((len(missing), len(missing)))
    rhs = np.zeros((len(missing), channels))
    for row, (i, j) in enumerate(missing):
        total = 0.0
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if (di, dj) == (0, 0):
                    continue
                ni, nj = i + di, j + dj
                if not (0 <= ni < height and 0 <= nj < width):
                    continue
                w = DIRECT if di == 0 or dj == 0 else DIAGONAL
                total += w
                if hole[ni, nj]:
                    matrix[row, index[ni, nj]] -= w
                else:
                    rhs[row] += w * image[:, ni, nj]
        matrix[row, row] += total
    solution = spsolve(matrix.tocsc(), rhs).reshape(len(missing), channels)
    out = image.copy()
    out[:, hole] = solution.T
    return out


def _holes(batch, height, width, seed):
    gen = torch.Generator().manual_seed(seed)
    holes = torch.rand(batch, 1, height, width, generator=gen) < 0.6  # scattered, many touch the border
    holes[0, 0, :, : width // 2] = True  # a large block along three borders
    if batch > 2:
        holes[2, 0] = False
        holes[2, 0, 0, 0] = True  # a single corner pixel
    return holes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_free_equals_a_direct_sparse_solve(dtype):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 13, 17, generator=gen).to(dtype)
    holes = _holes(3, 13, 17, seed=1)
    out = NoisyLinearInpainter(noise=0.0)(images, holes)
    for b in range(3):
        expected = _scipy_imputation(images[b].double().numpy(), holes[b, 0].numpy())
        np.testing.assert_allclose(out[b].double().numpy(), expected, atol=1e-5, rtol=0)
    known = ~holes.expand_as(images)
    assert torch.equal(out[known], images[known])  # known pixels bit-exact
    assert out.dtype == dtype


def test_the_registered_name_and_a_solve_in_float64_to_high_precision():
    images = torch.randn(2, 1, 20, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    holes = _holes(2, 20, 20, seed=3)
    inpainter = get_inpainter("linear", noise=0.0, tol=1e-12)
    assert isinstance(inpainter, NoisyLinearInpainter)
    out = inpainter(images, holes)
    for b in range(2):
        expected = _scipy_imputation(images[b].numpy(), holes[b, 0].numpy())
        np.testing.assert_allclose(out[b].numpy(), expected, atol=1e-9, rtol=0)
    # the solver's initial guess does not change the answer
    again = solve_linear_imputation(images, holes, initial=torch.zeros_like(images))
    assert torch.allclose(again, out, atol=1e-9)


def test_noise_has_the_given_standard_deviation_and_only_touches_the_holes():
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    holes = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    holes[:, :, 8:56, 8:56] = True
    exact = NoisyLinearInpainter(noise=0.0)(images, holes)
    noisy = NoisyLinearInpainter(noise=0.05, seed=7)(images, holes)
    residual = (noisy - exact)[holes.expand_as(images)]
    assert residual.std().item() == pytest.approx(0.05, rel=0.03)  # 13,824 draws
    assert abs(residual.mean().item()) < 4 * 0.05 / residual.numel() ** 0.5
    assert torch.equal(noisy[~holes.expand_as(images)], images[~holes.expand_as(images)])


def test_noise_is_seeded_per_image_index_not_per_batch():
    images = torch.rand(4, 3, 10, 10, generator=torch.Generator().manual_seed(5))
    holes = _holes(4, 10, 10, seed=6)
    inpainter = NoisyLinearInpainter(seed=11)
    batched = inpainter(images, holes, image_indices=[100, 101, 102, 103])
    for b in range(4):
        alone = inpainter(images[b:b + 1], holes[b:b + 1], image_indices=[100 + b])
        assert torch.allclose(batched[b:b + 1], alone, atol=1e-6)
    # without indices the position in the batch seeds the noise; a new seed changes it
    assert torch.allclose(inpainter(images, holes)[:1], inpainter(images[:1], holes[:1]), atol=1e-6)
    assert not torch.allclose(inpainter(images, holes), NoisyLinearInpainter(seed=12)(images, holes))
    with pytest.raises(ValueError, match="image_indices"):
        inpainter(images, holes, image_indices=[0, 1])


def test_an_image_that_is_all_hole_gets_the_fallback():
    images = torch.rand(2, 3, 6, 6)
    holes = torch.zeros(2, 1, 6, 6, dtype=torch.bool)
    holes[0] = True
    holes[1, :, 2, 2] = True
    out = NoisyLinearInpainter(noise=0.0, fallback=0.5)(images, holes)
    assert torch.equal(out[0], torch.full((3, 6, 6), 0.5))
    assert torch.isfinite(out).all()


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="noise"):
        NoisyLinearInpainter(noise=-0.1)
    with pytest.raises(ValueError, match="noise"):
        NoisyLinearInpainter(noise=float("nan"))
    with pytest.raises(TypeError, match="seed"):
        NoisyLinearInpainter(seed=1.5)
    with pytest.raises(ValueError, match="holes"):
        NoisyLinearInpainter()(torch.rand(1, 3, 4, 4), torch.ones(1, 1, 4, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_the_direct_solve():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    holes = _holes(2, 16, 16, seed=9)
    out = NoisyLinearInpainter(noise=0.0)(images.cuda(), holes.cuda())
    assert out.is_cuda
    for b in range(2):
        expected = _scipy_imputation(images[b].double().numpy(), holes[b, 0].numpy())
        np.testing.assert_allclose(out[b].cpu().double().numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("preconditioner", ["multigrid", "jacobi"])
def test_both_preconditioners_give_the_direct_solution(preconditioner):
    images = torch.rand(2, 2, 19, 23, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    holes = _holes(2, 19, 23, seed=13)
    out = solve_linear_imputation(images, holes, tol=1e-12, preconditioner=preconditioner)
    for b in range(2):
        expected = _scipy_imputation(images[b].numpy(), holes[b, 0].numpy())
        np.testing.assert_allclose(out[b].numpy(), expected, atol=1e-9, rtol=0)


def test_the_multigrid_preconditioner_needs_few_iterations_on_a_large_hole(monkeypatch):
    import captum_ext.inpaint.linear as linear

    calls = {"n": 0}
    original = linear._Multigrid.__call__

    def counting(self, *args):
        calls["n"] += 1
        return original(self, *args)

    monkeypatch.setattr(linear._Multigrid, "__call__", counting)
    images = torch.rand(1, 1, 96, 96, generator=torch.Generator().manual_seed(14))
    holes = torch.zeros(1, 1, 96, 96, dtype=torch.bool)
    holes[..., 12:84, 12:84] = True
    solve_linear_imputation(images, holes, tol=1e-7)
    assert calls["n"] < 40  # Jacobi-preconditioned CG needs hundreds on this hole
    with pytest.raises(ValueError, match="preconditioner"):
        solve_linear_imputation(images, holes, preconditioner="ilu")


def test_the_default_noisy_solve_is_float32_and_close_to_the_direct_solve_on_a_large_hole():
    # noise > 0: tol 1e-5 in float32; the error of the imputed values stays far below the noise
    images = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(21))
    holes = torch.zeros(2, 1, 40, 40, dtype=torch.bool)
    holes[0, :, 5:35, 5:35] = True  # one large hole
    holes[1] = torch.rand(1, 40, 40, generator=torch.Generator().manual_seed(22)) < 0.85
    inpainter = NoisyLinearInpainter()
    assert inpainter.tol == 1e-5 and NoisyLinearInpainter(noise=0.0).tol == 1e-7
    out = solve_linear_imputation(images, holes, tol=inpainter.tol)
    assert out.dtype == torch.float32
    for b in range(2):
        expected = _scipy_imputation(images[b].double().numpy(), holes[b, 0].numpy())
        np.testing.assert_allclose(out[b].double().numpy(), expected, atol=1e-3, rtol=0)


def test_batched_equals_one_at_a_time_although_images_converge_at_different_iterations():
    images = torch.rand(3, 2, 33, 29, generator=torch.Generator().manual_seed(23), dtype=torch.float64)
    holes = torch.zeros(3, 1, 33, 29, dtype=torch.bool)
    holes[0, :, 2:31, 2:27] = True  # slow: a large hole
    holes[1, :, 10, 10] = True  # fast: one pixel
    holes[2] = torch.rand(1, 33, 29, generator=torch.Generator().manual_seed(24)) < 0.3
    batched = solve_linear_imputation(images, holes, tol=1e-9)
    for b in range(3):
        alone = solve_linear_imputation(images[b:b + 1], holes[b:b + 1], tol=1e-9)
        assert torch.allclose(batched[b:b + 1], alone, atol=1e-12, rtol=0)


def test_an_empty_batch_returns_at_once():
    out = solve_linear_imputation(torch.rand(0, 3, 8, 8), torch.zeros(0, 1, 8, 8, dtype=torch.bool), max_iter=10**9)
    assert out.shape == (0, 3, 8, 8) and out.dtype == torch.float64  # default tol 1e-7: float64


def test_the_dense_coarse_operator_equals_the_stencil_and_the_coarse_solve_is_exact():
    import captum_ext.inpaint.linear as linear

    gen = torch.Generator().manual_seed(31)
    for height, width in ((5, 4), (1, 7), (6, 1), (3, 3)):
        coef = torch.rand(3, 9, height, width, generator=gen, dtype=torch.float64)
        u = torch.rand(3, 2, height, width, generator=gen, dtype=torch.float64)
        dense = linear._dense_matrix(coef) @ u.flatten(2).transpose(1, 2)
        torch.testing.assert_close(dense.transpose(1, 2).reshape(u.shape),
                                   linear._variable_stencil(coef, u), rtol=0, atol=1e-14)
    # the coarsest grid of a 40 x 36 problem (20 x 18 > 256 cells, then 10 x 9) is solved exactly
    free = (torch.rand(2, 1, 40, 36, generator=gen) < 0.7).double()
    workspace = linear._Workspace(2, 1, 40, 36, torch.float64, torch.device("cpu"))
    multigrid = linear._Multigrid(free, workspace)
    coef = multigrid.levels[-1][0]
    assert coef.shape[-2:] == (10, 9) and multigrid.direct_inverse is not None
    matrix = linear._dense_matrix(coef)
    torch.testing.assert_close(matrix, matrix.transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(multigrid.direct_inverse @ matrix,
                               torch.eye(90, dtype=torch.float64).expand(2, 90, 90), rtol=0, atol=1e-10)


def test_an_image_without_known_pixels_is_solved_apart_and_gets_the_fallback():
    """Regression: an all-hole image (the last step of a deletion curve) has a singular system;
    its coarse operator was given to a Cholesky factorisation, which failed on the whole batch."""
    import captum_ext.inpaint.linear as linear

    gen = torch.Generator().manual_seed(5)
    x = torch.rand(3, 3, 8, 8, generator=gen)
    holes = torch.zeros(3, 1, 8, 8, dtype=torch.bool)
    holes[0] = True
    holes[1, :, 2:6, 1:7] = True
    holes[2, :, :, :5] = True
    out = solve_linear_imputation(x, holes, tol=1e-5)
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    torch.testing.assert_close(out[1:], solve_linear_imputation(x[1:], holes[1:], tol=1e-5),
                               rtol=0, atol=1e-6)
    filled = NoisyLinearInpainter(fallback=0.25)(x, holes)
    assert torch.equal(filled[0], torch.full_like(x[0], 0.25))
    # an indefinite coarse operator (the singular all-free one, shifted down by 1e-6): the dense
    # inverse falls back to the pseudo-inverse, whose product with the operator is the
    # projection off the constants (the one negative eigenvector)
    free = torch.ones(1, 1, 32, 32, dtype=torch.float64)
    multigrid = linear._Multigrid(free, linear._Workspace(1, 1, 32, 32, torch.float64, torch.device("cpu")))
    coef = multigrid.levels[-1][0].clone()
    coef[:, 4] -= 1e-6
    matrix = linear._dense_matrix(coef)[0]
    assert torch.linalg.cholesky_ex(matrix).info.item() != 0
    inverse = linear._dense_inverse(coef)[0]
    cells = matrix.shape[0]
    projection = torch.eye(cells, dtype=torch.float64) - 1.0 / cells
    torch.testing.assert_close(inverse @ matrix, projection, rtol=0, atol=1e-8)
