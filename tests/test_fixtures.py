"""The shared ``device`` / ``dtype`` fixtures of tests/conftest.py (issue 14.6)."""

import torch

from captum_ext.inpaint import ConstantInpainter, apply_inpainter


def test_dtype_fixture_runs_float32_and_float64(dtype, device, tolerance):
    # an oracle check in the fixture's dtype: a constant fill of a hole is the constant; 1/3 is
    # not a float32 number, so a float64 run filled through float32 misses it by ~1e-8
    images = torch.rand(2, 3, 5, 5, dtype=dtype, device=device)
    holes = torch.zeros(2, 1, 5, 5, dtype=dtype, device=device)
    holes[..., 1:3, 1:3] = 1
    out = apply_inpainter(ConstantInpainter(1 / 3), images, holes)
    rtol, atol = tolerance(dtype)
    assert out.dtype == dtype and out.device.type == device.type
    expected = torch.where(holes.bool(), torch.full_like(images, 1 / 3), images)
    torch.testing.assert_close(out, expected, rtol=rtol, atol=atol)
