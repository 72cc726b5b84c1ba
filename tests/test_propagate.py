"""Exact-oracle tests of the propagation core: graphs, operators and MRP solvers."""

import math

import pytest
import torch

from captum_ext.propagate import (
    CSROperator,
    StencilOperator,
    color_features,
    conjugate_gradient,
    leakage_weight,
    solve_mrp,
    stencil_affinity,
    value_iteration,
    window_offsets,
)

SOLVERS = ("cg", "value_iteration")


def _guide(batch=2, channels=3, height=7, width=6, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, height, width, generator=gen, dtype=dtype)


def _reward(batch=2, channels=3, height=7, width=6, seed=1, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, height, width, generator=gen, dtype=dtype)


def _dense_solution(op, reward, gamma):
    """V* = (I - gamma P)^-1 R by a dense torch.linalg.solve of the whole batch."""
    weights = op.to_dense()
    transition = weights / weights.sum(dim=1, keepdim=True)
    batch, channels, height, width = reward.shape
    rhs = reward.permute(0, 2, 3, 1).reshape(-1, channels)
    eye = torch.eye(transition.shape[0], dtype=transition.dtype)
    values = torch.linalg.solve(eye - gamma * transition, rhs)
    return values.view(batch, height, width, channels).permute(0, 3, 1, 2)


def _brute_force_affinity(guide, radius, sigma_s, sigma_c):
    """The window-graph W from its definition, one pixel pair at a time (tiny images only)."""
    _, _, height, width = guide.shape
    n = height * width
    dense = torch.zeros(n, n, dtype=guide.dtype)
    for i in range(n):
        yi, xi = divmod(i, width)
        for j in range(n):
            yj, xj = divmod(j, width)
            if abs(yi - yj) <= radius and abs(xi - xj) <= radius:
                d2 = float((guide[0, :, yi, xi] - guide[0, :, yj, xj]).square().sum())
                s2 = (yi - yj) ** 2 + (xi - xj) ** 2
                dense[i, j] = math.exp(-s2 / (2 * sigma_s**2) - d2 / (2 * sigma_c**2))
    return dense


# ----------------------------------------------------------------------------- graph


def test_window_offsets_centre_and_count():
    offsets = window_offsets(2)
    assert len(offsets) == 25 and offsets[12] == (0, 0)
    assert window_offsets(0) == [(0, 0)]


@pytest.mark.parametrize("radius", [1, 2])
def test_affinity_matches_its_definition(radius):
    guide = _guide(batch=1, height=5, width=4)
    op = StencilOperator.from_guide(guide, radius=radius, sigma_s=1.3, sigma_c=0.4, min_weight=0)
    expected = _brute_force_affinity(guide, radius, 1.3, 0.4)
    torch.testing.assert_close(op.to_dense(), expected)


def test_affinity_is_exactly_symmetric():
    dense = StencilOperator.from_guide(_guide(dtype=torch.float32), radius=2).to_dense()
    assert torch.equal(dense, dense.T)


def test_lab_graph_is_the_rgb_graph_of_lab_over_100():
    from kornia.color import rgb_to_lab

    guide = _guide(dtype=torch.float32)
    lab = stencil_affinity(guide, color_space="lab", sigma_c=0.2)
    manual = stencil_affinity(rgb_to_lab(guide) / 100.0, color_space="rgb", sigma_c=0.2)
    torch.testing.assert_close(lab, manual)
    torch.testing.assert_close(color_features(guide, "lab"), rgb_to_lab(guide) / 100.0)


def test_tiny_weights_are_flushed_and_isolated_pixels_get_a_self_loop():
    guide = torch.zeros(1, 1, 4, 4)
    guide[..., ::2, :] = 1.0  # rows alternate 0 / 1: vertical neighbours differ by 1
    weights = stencil_affinity(guide, sigma_c=0.01, self_loop=False)
    assert weights.min() == 0 and bool((weights[weights > 0] >= 1e-10).all())
    # with sigma_s tiny as well, every neighbour is flushed: all pixels isolated
    alone = stencil_affinity(guide, sigma_s=0.01, sigma_c=0.01, self_loop=False)
    assert torch.equal(alone[:, 4], torch.ones(1, 4, 4)) and alone.sum() == 16


def test_leakage_across_an_edge_is_the_colour_factor():
    delta, sigma_c = 0.3, 0.1
    guide = torch.zeros(1, 1, 4, 6, dtype=torch.float64)
    guide[..., 3:] = delta
    weights = stencil_affinity(guide, sigma_c=sigma_c)
    right = window_offsets(1).index((0, 1))
    inside, across = weights[0, right, 1, 0], weights[0, right, 1, 2]  # (1,0)->(1,1), (1,2)->(1,3)
    assert math.isclose(float(across / inside), leakage_weight(delta, sigma_c), rel_tol=1e-12)


# ----------------------------------------------------------------------------- operators


def test_stencil_and_csr_operators_agree():
    guide = _guide(height=9, width=8)
    stencil = StencilOperator.from_guide(guide, radius=2, sigma_c=0.3)
    csr = CSROperator.from_stencil(stencil)
    x = _reward(height=9, width=8, channels=4)
    torch.testing.assert_close(stencil.apply(x), csr.apply(x))
    torch.testing.assert_close(stencil.matvec(x), csr.matvec(x))
    torch.testing.assert_close(stencil.degree, csr.degree)
    assert csr.block_diagonal and csr.is_symmetric()
    torch.testing.assert_close(stencil.to_dense(), csr.to_dense())
    for solver in SOLVERS:
        a, _ = solve_mrp(stencil, x, solver=solver, tol=1e-10)
        b, _ = solve_mrp(csr, x, solver=solver, tol=1e-10)
        torch.testing.assert_close(a, b)


def test_rows_of_the_transition_sum_to_one():
    op = StencilOperator.from_guide(_guide(), radius=1)
    ones = torch.ones(2, 1, 7, 6, dtype=torch.float64)
    torch.testing.assert_close(op.matvec(ones), ones)


def test_operator_rejects_wrong_value_shapes():
    op = StencilOperator.from_guide(_guide())
    with pytest.raises(ValueError, match="graph is for"):
        op.apply(torch.zeros(2, 1, 7, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="4-D"):
        op.apply(torch.zeros(7, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-negative"):
        StencilOperator(-torch.ones(1, 9, 3, 3))
    with pytest.raises(ValueError, match=r"\(2r\+1\)\^2"):
        StencilOperator(torch.ones(1, 8, 3, 3))


def test_user_affinity_with_long_range_edges():
    """A non-grid graph: a 1x6 'image' with a long edge between pixels 0 and 5."""
    dense = torch.eye(6, dtype=torch.float64)
    for i in range(5):
        dense[i, i + 1] = dense[i + 1, i] = 0.5
    dense[0, 5] = dense[5, 0] = 2.0
    op = CSROperator(dense.to_sparse(), shape=(1, 1, 6))
    reward = torch.tensor([[[[1.0, 0, 0, 0, 0, -1]]]], dtype=torch.float64)
    expected = _dense_solution(op, reward, 0.8)
    for solver in SOLVERS:
        values, info = solve_mrp(op, reward, gamma=0.8, solver=solver, tol=1e-10)
        torch.testing.assert_close(values, expected)
        assert info.converged


def test_user_affinity_coupling_two_images():
    """Edges between images: solved as one system (global scaling), still exact."""
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(8, 8, generator=gen, dtype=torch.float64)
    dense = a + a.T
    op = CSROperator(dense.to_sparse_csr(), shape=(2, 2, 2))
    assert not op.block_diagonal
    reward = torch.randn(2, 3, 2, 2, generator=gen, dtype=torch.float64)
    reward[1] *= 1e-3  # images of very different scale
    expected = _dense_solution(op, reward, 0.9)
    for solver in SOLVERS:
        values, _ = solve_mrp(op, reward, gamma=0.9, solver=solver, tol=1e-12, max_iter=5000)
        torch.testing.assert_close(values, expected)


def test_non_symmetric_affinity_needs_value_iteration():
    dense = torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)
    op = CSROperator(dense.to_sparse(), shape=(1, 1, 2))
    assert not op.is_symmetric()
    reward = torch.tensor([[[[1.0, -2.0]]]], dtype=torch.float64)
    with pytest.raises(ValueError, match="symmetric"):
        conjugate_gradient(op, reward)
    values, _ = value_iteration(op, reward, gamma=0.5, tol=1e-12)
    torch.testing.assert_close(values, _dense_solution(op, reward, 0.5))


def test_user_affinity_is_validated():
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        CSROperator(torch.eye(3).to_sparse(), shape=(1, 2, 2))
    with pytest.raises(ValueError, match="positive entry"):
        CSROperator(torch.zeros(4, 4).to_sparse(), shape=(1, 2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        CSROperator((-torch.eye(4)).to_sparse(), shape=(1, 2, 2))
    with pytest.raises(TypeError, match="affinity"):
        CSROperator([[1.0]], shape=(1, 1, 1))


# ----------------------------------------------------------------------------- solvers


@pytest.mark.parametrize("solver", SOLVERS)
def test_gamma_zero_is_the_identity(solver):
    op = StencilOperator.from_guide(_guide())
    reward = _reward()
    values, info = solve_mrp(op, reward, gamma=0.0, solver=solver)
    assert torch.equal(values, reward) and info.iterations == 0


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("operator", [StencilOperator, CSROperator])
def test_constant_reward_is_preserved(solver, operator):
    op = operator.from_guide(_guide(seed=5), radius=2, sigma_c=0.05)
    reward = torch.full((2, 3, 7, 6), -2.5, dtype=torch.float64)
    values, _ = solve_mrp(op, reward, gamma=0.9, solver=solver, tol=1e-7)
    torch.testing.assert_close((1 - 0.9) * values, reward)


@pytest.mark.parametrize("solver", SOLVERS)
def test_rescaled_value_stays_within_reward_range(solver):
    op = StencilOperator.from_guide(_guide(seed=2), sigma_c=0.2)
    reward = _reward(seed=4)
    gamma, tol = 0.9, 1e-6
    values, _ = solve_mrp(op, reward, gamma=gamma, solver=solver, tol=tol)
    out = (1 - gamma) * values
    slack = tol * reward.abs().amax()
    low = reward.amin(dim=(1, 2, 3), keepdim=True)
    high = reward.amax(dim=(1, 2, 3), keepdim=True)
    assert bool((out >= low - slack).all()) and bool((out <= high + slack).all())
    assert out.std() < reward.std()  # it did average something


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_solvers_agree_with_a_dense_solve(gamma):
    op = StencilOperator.from_guide(_guide(seed=7), radius=1, sigma_c=0.3)
    reward = _reward(seed=8)
    expected = _dense_solution(op, reward, gamma)
    scale = reward.abs().amax(dim=(1, 2, 3))
    for solver in SOLVERS:
        tol = 1e-6
        values, info = solve_mrp(op, reward, gamma=gamma, solver=solver, tol=tol, max_iter=10000)
        error = (values - expected).abs().amax(dim=(1, 2, 3)) / scale
        assert info.converged and bool((error <= tol).all())
        # the reported bound is a true bound on the error
        assert bool((error <= info.error_bound + 1e-12).all())


def test_cg_needs_far_fewer_iterations_than_value_iteration_near_gamma_one():
    op = StencilOperator.from_guide(_guide(height=12, width=12, seed=9))
    reward = _reward(height=12, width=12)
    _, vi = value_iteration(op, reward, gamma=0.99, tol=1e-6, max_iter=10000)
    _, cg = conjugate_gradient(op, reward, gamma=0.99, tol=1e-6)
    assert vi.converged and cg.converged and cg.iterations * 5 < vi.iterations


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_a_priori_error_bound_after_t_steps(steps):
    gamma = 0.8
    op = StencilOperator.from_guide(_guide(seed=11), sigma_c=0.2)
    reward = _reward(seed=12)
    expected = _dense_solution(op, reward, gamma)
    values, info = value_iteration(op, reward, gamma=gamma, tol=0.0, max_iter=steps, warn=False)
    assert info.iterations == steps and not info.converged
    bound = gamma ** (steps + 1) / (1 - gamma) * reward.abs().amax(dim=(1, 2, 3))
    error = (values - expected).abs().amax(dim=(1, 2, 3))
    assert bool((error <= bound).all())
    # the bound is attained by a constant reward: so V_t is exactly t steps, not t - 1 or t + 1
    constant = torch.ones_like(reward)
    values, _ = value_iteration(op, constant, gamma=gamma, tol=0.0, max_iter=steps, warn=False)
    error = (values - 1 / (1 - gamma)).abs().amax()
    assert math.isclose(float(error), gamma ** (steps + 1) / (1 - gamma), rel_tol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_batched_equals_one_by_one(solver):
    guide, reward = _guide(batch=3, seed=13), _reward(batch=3, seed=14)
    reward[1] *= 1e-6  # an image with tiny attributions converges on its own scale
    reward[2] = 0.0  # an all-zero image gives zeros, not NaN
    op = StencilOperator.from_guide(guide)
    batched, info = solve_mrp(op, reward, solver=solver, tol=1e-8)
    for i in range(3):
        single_op = StencilOperator.from_guide(guide[i : i + 1])
        single, _ = solve_mrp(single_op, reward[i : i + 1], solver=solver, tol=1e-8)
        scale = reward[i].abs().max().clamp_min(1e-300)
        assert float((batched[i] - single[0]).abs().max() / scale) <= 1e-7
    assert torch.equal(batched[2], torch.zeros_like(batched[2])) and info.converged


@pytest.mark.parametrize("solver", SOLVERS)
def test_horizontal_flip_equivariance(solver):
    guide, reward = _guide(seed=15), _reward(seed=16)
    values, _ = solve_mrp(StencilOperator.from_guide(guide), reward, solver=solver, tol=1e-10)
    flipped, _ = solve_mrp(
        StencilOperator.from_guide(guide.flip(-1)), reward.flip(-1), solver=solver, tol=1e-10
    )
    torch.testing.assert_close(flipped, values.flip(-1))


def test_an_edge_blocks_leakage_as_predicted():
    """Reward on the left of a colour step: what reaches the right is linear in the edge factor."""
    def right_side_mass(delta, sigma_c=0.1):
        guide = torch.zeros(1, 1, 10, 10, dtype=torch.float64)
        guide[..., 5:] = delta
        reward = torch.zeros(1, 1, 10, 10, dtype=torch.float64)
        reward[..., :5] = 1.0
        op = StencilOperator.from_guide(guide, sigma_c=sigma_c)
        values, _ = solve_mrp(op, reward, gamma=0.9, tol=1e-12)
        return float((0.1 * values)[..., 5:].sum())

    eps1, eps2 = leakage_weight(0.3, 0.1), leakage_weight(0.4, 0.1)  # 1.1e-2, 3.4e-4
    leak1, leak2 = right_side_mass(0.3), right_side_mass(0.4)
    # first order in the edge factor: the ratio of leaks is the ratio of factors
    assert math.isclose(leak1 / leak2, eps1 / eps2, rel_tol=0.05)
    # and it is small next to a graph that ignores colour
    assert right_side_mass(0.3, sigma_c=float("inf")) > 10 * leak1


def test_max_iter_cap_warns_and_reports():
    op = StencilOperator.from_guide(_guide())
    with pytest.warns(RuntimeWarning, match="max_iter=2"):
        _, info = value_iteration(op, _reward(), gamma=0.99, tol=1e-8, max_iter=2)
    assert not info.converged and info.iterations == 2
    assert info.residual.shape == (2,) and bool((info.error_bound > 1e-8).all())


def test_solver_arguments_are_validated():
    op = StencilOperator.from_guide(_guide())
    with pytest.raises(ValueError, match="gamma"):
        solve_mrp(op, _reward(), gamma=1.0)
    with pytest.raises(ValueError, match="solver"):
        solve_mrp(op, _reward(), solver="jacobi")
    with pytest.raises(ValueError, match="tol"):
        solve_mrp(op, _reward(), tol=-1.0)


def test_float32_large_image_converges_without_denormals():
    """A point reward on a 64x64 image: the propagation front decays below float32's normal
    range; values are flushed so the result stays exact to tol and finite."""
    guide = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    reward = torch.zeros(1, 1, 64, 64)
    reward[..., 0, 0] = 1.0
    op = StencilOperator.from_guide(guide, sigma_c=0.05)
    for solver in SOLVERS:
        values, info = solve_mrp(op, reward, gamma=0.95, solver=solver, tol=1e-5)
        tiny = (values != 0) & (values.abs() < torch.finfo(torch.float32).tiny)
        assert info.converged and not bool(tiny.any())


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_at_gamma_099_is_accurate_and_converges(solver):
    """Near gamma = 1 in float32, V (up to max|R| / (1 - gamma)) is only accurate to float
    rounding, ~1e-5 max|V|; the stopping rule is still met and the rescaled output
    (1 - gamma) V, what IProp returns, stays within tol max|R|."""
    guide = _guide(height=10, width=10, seed=21)
    reward = _reward(height=10, width=10, seed=22)
    expected = _dense_solution(StencilOperator.from_guide(guide), reward, 0.99)
    op = StencilOperator.from_guide(guide.float())
    values, info = solve_mrp(op, reward.float(), gamma=0.99, solver=solver, tol=1e-4,
                             max_iter=5000)
    error = 0.01 * (values.double() - expected).abs().amax(dim=(1, 2, 3))
    assert info.converged and bool((error <= 1e-4 * reward.abs().amax(dim=(1, 2, 3))).all())


def _mixed_batch(dtype=torch.float32):
    """Images that converge at very different speeds: noise, a flat image, two flat halves."""
    gen = torch.Generator().manual_seed(0)
    guide = torch.rand(4, 3, 24, 24, generator=gen, dtype=dtype)
    guide[1] = guide[1].mean(dim=(1, 2), keepdim=True)
    guide[2, :, :, 12:], guide[2, :, :, :12] = 1.0, 0.0
    reward = 60 * torch.randn(4, 3, 24, 24, generator=gen, dtype=dtype)
    return guide, reward


@pytest.mark.parametrize("solver,preconditioner", [
    ("cg", "jacobi"), ("cg", "multigrid"), ("value_iteration", "jacobi")])
def test_each_image_stops_on_its_own(solver, preconditioner):
    """Issue 16: the stopping point of an image never depends on the rest of the batch, so a
    batched solve equals one-at-a-time solves to float rounding (here: exactly) in float32 at
    a loose tolerance, where a batch-wide stopping rule differs by ~1e-5 of max|V|."""
    guide, reward = _mixed_batch()
    op = StencilOperator.from_guide(guide)
    options = dict(gamma=0.99, solver=solver, tol=1e-3, max_iter=5000,
                   preconditioner=preconditioner)
    batched, info = solve_mrp(op, reward, **options)
    counts = []
    for i in range(4):
        single, single_info = solve_mrp(StencilOperator.from_guide(guide[i : i + 1]),
                                        reward[i : i + 1], **options)
        eps = torch.finfo(torch.float32).eps
        torch.testing.assert_close(batched[i : i + 1], single, rtol=0,
                                   atol=4 * eps * float(single.abs().max()))
        counts.append(single_info.iterations)
    assert info.image_iterations.tolist() == counts and len(set(counts)) > 1
    assert info.iterations == max(counts) and bool(info.image_converged.all())


# ----------------------------------------------------------------------------- preconditioners


def _aggregation_matrix(height, width, dtype=torch.float64):
    """R: (ceil(H/2) ceil(W/2), H W), 1 where a fine pixel belongs to a 2 x 2 block."""
    hc, wc = (height + 1) // 2, (width + 1) // 2
    matrix = torch.zeros(hc * wc, height * width, dtype=dtype)
    for y in range(height):
        for x in range(width):
            matrix[(y // 2) * wc + x // 2, y * width + x] = 1.0
    return matrix


@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("size", [(6, 8), (7, 5)])
def test_galerkin_coarsening_is_r_a_rt(radius, size):
    from captum_ext.propagate.multigrid import _dense, galerkin_coarsen, system_stencil

    height, width = size
    op = StencilOperator.from_guide(_guide(batch=1, height=height, width=width, seed=31),
                                    radius=radius, sigma_c=0.3)
    stencil = system_stencil(op.weights, op.degree, 0.9)
    dense = torch.diag(op.degree.flatten() / 0.9) - op.to_dense()
    coarse, coarse_radius = galerkin_coarsen(stencil, radius)
    assert coarse_radius == (radius + 1) // 2
    R = _aggregation_matrix(height, width)
    expected = R @ dense @ R.T
    # padding pixels (odd sides) add a unit diagonal per padded pixel to their block
    hc, wc = coarse.shape[2:]
    pad = torch.zeros(hc * wc, dtype=torch.float64)
    for y in range(2 * hc):
        for x in range(2 * wc):
            if y >= height or x >= width:
                pad[(y // 2) * wc + x // 2] += 1.0
    torch.testing.assert_close(_dense(coarse, coarse_radius)[0], expected + torch.diag(pad))


def test_multigrid_v_cycle_is_symmetric_positive_definite():
    from captum_ext.propagate.multigrid import MultigridPreconditioner, system_stencil

    op = StencilOperator.from_guide(_guide(batch=1, height=13, width=11, seed=32), sigma_c=0.1)
    mg = MultigridPreconditioner(system_stencil(op.weights, op.degree, 0.99), op.radius,
                                 coarsest_pixels=4)
    assert mg.depth >= 3
    n = 13 * 11
    basis = torch.eye(n, dtype=torch.float64).view(n, 1, 13, 11)
    matrix = torch.cat([mg(basis[i : i + 1]) for i in range(n)]).reshape(n, n)
    torch.testing.assert_close(matrix, matrix.T)
    assert float(torch.linalg.eigvalsh(matrix).min()) > 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("preconditioner", ["jacobi", "multigrid"])
@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_preconditioned_cg_equals_a_dense_solve(dtype, preconditioner, gamma):
    """The oracle: torch.linalg.solve of (I - gamma P) V = R in float64, odd image sizes."""
    guide, reward = _guide(height=13, width=11, seed=33), _reward(height=13, width=11, seed=34)
    expected = _dense_solution(StencilOperator.from_guide(guide, sigma_c=0.1), reward, gamma)
    op = StencilOperator.from_guide(guide.to(dtype), sigma_c=0.1)
    values, info = conjugate_gradient(op, reward.to(dtype), gamma=gamma, tol=1e-6,
                                      max_iter=2000, preconditioner=preconditioner,
                                      warn=dtype == torch.float64)
    assert info.preconditioner == preconditioner
    scale = reward.abs().amax(dim=(1, 2, 3), keepdim=True)
    error = ((1 - gamma) * (values.double() - expected)).abs() / scale
    assert float(error.max()) <= (1e-6 if dtype == torch.float64 else 2e-5)


def test_multigrid_needs_fewer_iterations_than_jacobi():
    guide, reward = _guide(height=32, width=32, seed=35), _reward(height=32, width=32, seed=36)
    op = StencilOperator.from_guide(guide, sigma_c=0.3)
    _, jacobi = conjugate_gradient(op, reward, gamma=0.99, tol=1e-6, preconditioner="jacobi")
    _, multigrid = conjugate_gradient(op, reward, gamma=0.99, tol=1e-6,
                                      preconditioner="multigrid")
    assert multigrid.converged and multigrid.iterations < jacobi.iterations


def test_preconditioner_is_validated_and_falls_back_for_csr():
    op = StencilOperator.from_guide(_guide())
    with pytest.raises(ValueError, match="preconditioner"):
        conjugate_gradient(op, _reward(), preconditioner="ilu")
    _, info = conjugate_gradient(CSROperator.from_stencil(op), _reward(),
                                 preconditioner="multigrid")
    assert info.preconditioner == "jacobi"


def test_cache_blocking_over_images_changes_nothing(monkeypatch):
    """The CPU cache blocking runs the same ops on chunks of images: bit for bit the same."""
    from captum_ext.propagate import operators

    guide, reward = _guide(batch=5, height=9, width=8, seed=41), _reward(batch=5, height=9,
                                                                         width=8, seed=42)
    op = StencilOperator.from_guide(guide, radius=2)
    whole = (op.apply(reward), op.step(reward, reward, 0.9))
    monkeypatch.setattr(operators, "CACHE_BLOCK_BYTES", 1)  # one image per chunk
    chunked = (op.apply(reward), op.step(reward, reward, 0.9))
    assert all(torch.equal(a, b) for a, b in zip(whole, chunked))
    dense = op.to_dense()
    flat = reward.permute(0, 2, 3, 1).reshape(-1, 3)
    torch.testing.assert_close(chunked[0].permute(0, 2, 3, 1).reshape(-1, 3), dense @ flat)


# ----------------------------------------------------------------------------- fast paths (15.4)


@pytest.mark.parametrize("radius,size", [(1, (7, 6)), (2, (5, 4)), (2, (2, 6))])
def test_affinity_without_self_loop_matches_its_definition(radius, size):
    """The half-window build (each opposite pair once, mirrored) against the brute force,
    also where the window is wider than the image."""
    height, width = size
    guide = _guide(batch=1, height=height, width=width, seed=51)
    op = StencilOperator.from_guide(guide, radius=radius, sigma_s=1.3, sigma_c=0.4,
                                    self_loop=False, min_weight=0)
    expected = _brute_force_affinity(guide, radius, 1.3, 0.4)
    expected.fill_diagonal_(0.0)
    torch.testing.assert_close(op.to_dense(), expected)


@pytest.mark.parametrize("negated", [False, True])
def test_scaled_system_stencil_is_s_a_s(negated):
    from captum_ext.propagate.multigrid import _dense, scaled_system_stencil

    op = StencilOperator.from_guide(_guide(batch=2, height=7, width=5, seed=52), radius=2)
    gamma = 0.95
    scaled = _dense(scaled_system_stencil(op.weights, op.degree, gamma, negated=negated), 2)
    for b in range(2):
        dense = CSROperator.from_stencil(StencilOperator(op.weights[b : b + 1])).to_dense()
        degree = op.degree[b].flatten() / gamma
        s = torch.diag(degree.rsqrt())
        expected = s @ (torch.diag(degree) - dense) @ s
        torch.testing.assert_close(scaled[b], -expected if negated else expected)


@pytest.mark.parametrize("with_base", [False, True])
def test_stencil_product_plan_equals_stencil_accumulate(monkeypatch, with_base):
    """The planned product reads its buffers at each call, chunked or not: bit for bit."""
    from captum_ext.propagate import operators

    op = StencilOperator.from_guide(_guide(batch=3, height=9, width=8, seed=53), radius=2)
    x, base = _reward(batch=3, height=9, width=8, seed=54), _reward(batch=3, height=9, width=8)
    for block in (operators.CACHE_BLOCK_BYTES, 1):  # whole batch, then one image per chunk
        monkeypatch.setattr(operators, "CACHE_BLOCK_BYTES", block)
        out = torch.empty_like(x)
        product = operators.stencil_product(op.weights, x, 2, out, base if with_base else None)
        for _ in range(2):  # x changes in place between calls
            expected = operators.stencil_accumulate(op.weights, x, 2,
                                                    base=base if with_base else None)
            assert product() is out and torch.equal(out, expected)
            x.mul_(-0.5).add_(1.0)


def test_check_all_finite_words_the_error_like_check_finite():
    from captum_ext.propagate.graph import check_all_finite

    check_all_finite("x", torch.zeros(0, 3))
    check_all_finite("x", torch.rand(2, 3))
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.rand(2, 3, 4, 4)
        x[1, 2, 3, 0] = bad
        with pytest.raises(ValueError, match=r"`x` contains NaN or inf \(1 of 96 values\)"):
            check_all_finite("x", x)


@pytest.mark.parametrize("preconditioner", ["jacobi", "multigrid"])
def test_cg_stops_at_the_first_iteration_that_meets_the_rule(preconditioner):
    """The stopping test on max|r~| max s / min s bounds (exact product only in between)
    decides as the exact residual would: one iteration fewer misses the rule, and the
    returned residual meets it. Degrees vary widely (isolated pixels next to flat regions)."""
    guide = _guide(batch=2, height=16, width=16, seed=55)
    guide[..., :8, :] = 0.5  # a flat half (degree ~5) beside noise (degree ~1)
    op = StencilOperator.from_guide(guide, sigma_c=0.05)
    reward, gamma, tol = _reward(batch=2, height=16, width=16, seed=56), 0.99, 1e-4
    _, info = conjugate_gradient(op, reward, gamma, tol, preconditioner=preconditioner)
    assert info.converged and float(info.residual.max()) <= tol * (1 - gamma) * 1.01
    for b, count in enumerate(info.image_iterations.tolist()):
        single = StencilOperator(op.weights[b : b + 1])
        _, short = conjugate_gradient(single, reward[b : b + 1], gamma, tol, max_iter=count - 1,
                                      warn=False, preconditioner=preconditioner)
        assert not short.converged and float(short.residual) > tol * (1 - gamma)
        _, exact = conjugate_gradient(single, reward[b : b + 1], gamma, tol, max_iter=count,
                                      preconditioner=preconditioner)
        assert exact.converged and exact.iterations == count
