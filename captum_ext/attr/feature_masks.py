"""Feature masks for Captum's perturbation methods: grids and SLIC superpixels.

``FeatureAblation``, ``Lime``, ``KernelShap`` and ``ShapleyValueSampling`` take a
``feature_mask`` of integer ids (0 .. n-1) that groups pixels into features; these helpers
build masks of shape ``(B or 1, 1, H, W)`` that broadcast over the channels.
"""

from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from captum_ext._checks import check_finite, check_image_batch, check_int_at_least, check_positive


def grid_feature_mask(height: int, width: int, cell: Union[int, tuple] = 8,
                      device: Optional[Union[str, torch.device]] = None) -> Tensor:
    """A grid of ``cell``-sized squares, numbered row by row from 0.

    Args:
        height (int): image height.
        width (int): image width.
        cell (int or tuple of two ints): cell height and width; edge cells may be smaller.
        device (torch.device, optional): where to put the mask.

    Returns:
        Tensor: long ``(1, 1, height, width)``.

    Examples::

        >>> grid_feature_mask(4, 4, cell=2)[0, 0].tolist()
        [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    """
    check_int_at_least("height", height, 1)
    check_int_at_least("width", width, 1)
    if isinstance(cell, int) and not isinstance(cell, bool):
        cell_h, cell_w = cell, cell
    elif isinstance(cell, (tuple, list)) and len(cell) == 2:
        cell_h, cell_w = cell
    elif isinstance(cell, (tuple, list)):
        raise ValueError(f"`cell` must be a tuple of two ints (height, width), got {cell!r}")
    else:
        raise TypeError(
            f"`cell` must be an int or a tuple of two ints (height, width), got {cell!r}"
        )
    check_int_at_least("cell", cell_h, 1)
    check_int_at_least("cell", cell_w, 1)
    rows = torch.arange(height, device=device) // cell_h
    cols = torch.arange(width, device=device) // cell_w
    per_row = -(-width // cell_w)
    return (rows.view(-1, 1) * per_row + cols.view(1, -1)).view(1, 1, height, width)


def slic_feature_mask(images: Tensor, n_segments: int = 50, compactness: float = 30.0,
                      sigma: float = 3.0) -> Tensor:
    """SLIC superpixels (scikit-image) per image, relabelled 0 .. n-1.

    Defaults are the LIME settings of Agarwal and Nguyen (50 segments, compactness 30,
    sigma 3). Each image is min-max rescaled to [0, 1] first, so any normalisation works;
    3-channel images are segmented in Lab, others channel-wise.

    Args:
        images (Tensor): ``(B, C, H, W)``.
        n_segments (int): approximate number of superpixels. Default: 50.
        compactness (float): colour vs space trade-off. Default: 30.
        sigma (float): Gaussian pre-smoothing. Default: 3.

    Returns:
        Tensor: long ``(B, 1, H, W)`` on ``images.device``; each image's ids are 0 .. n_i-1.
        A batch of 0 images gives an empty ``(0, 1, H, W)`` mask.

    Raises:
        ValueError: ``images`` is not 4-D or contains NaN or inf (naming ``images``).

    Examples::

        >>> mask = slic_feature_mask(torch.rand(2, 3, 32, 32), n_segments=8)
        >>> mask.shape, int(mask[0].min())
        (torch.Size([2, 1, 32, 32]), 0)
    """
    check_image_batch("images", images)
    check_int_at_least("n_segments", n_segments, 1)
    check_positive("compactness", compactness)
    check_positive("sigma", sigma, allow_zero=True)
    check_finite("images", images)
    if images.shape[0] == 0:
        return torch.zeros((0, 1) + tuple(images.shape[2:]), dtype=torch.long,
                           device=images.device)
    from skimage.segmentation import slic

    data = images.detach().to("cpu", torch.float64)
    low = data.amin(dim=(1, 2, 3), keepdim=True)
    span = (data.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
    scaled = ((data - low) / span).permute(0, 2, 3, 1).numpy()
    masks = []
    for image in scaled:  # scikit-image segments one image at a time
        labels = slic(image, n_segments=n_segments, compactness=compactness, sigma=sigma,
                      start_label=0, channel_axis=-1, convert2lab=image.shape[-1] == 3)
        masks.append(np.unique(labels, return_inverse=True)[1].reshape(labels.shape))
    return torch.from_numpy(np.stack(masks)).long().unsqueeze(1).to(images.device)
