"""ROAR on the stamped-image data set: the CPU-sized preset of :func:`captum_ext.metrics.roar`.

Chosen here, so that one run fits a 2-core CPU: 32 x 32 stamped images with 8-pixel stamps,
a :class:`~captum_ext.data.StampNet` of width 8, 2048 training and 512 test images, 8 epochs of
Adam with a one-cycle schedule (max lr 3e-3, batch 64); every retraining starts from the same
seed. The stamp's footprint is the ``"ground_truth"`` control's map.
"""

from typing import Any, Callable, Optional, Sequence

from torch import nn

from captum_ext.metrics.perturbation import InpainterLike
from captum_ext.metrics.roar import ROAR_FRACTIONS, RoarResult, roar

#: Seeds of the ROAR data, away from the classifier's (1,000,000+) and the benchmark's (500,000+).
TRAIN_SEED_OFFSET = 2_000_000
TEST_SEED_OFFSET = 3_000_000

__all__ = ["TEST_SEED_OFFSET", "TRAIN_SEED_OFFSET", "stamp_roar"]


def stamp_roar(
    methods: Any,
    fractions: Sequence[float] = ROAR_FRACTIONS,
    inpainter: Optional[InpainterLike] = None,
    n_train: int = 2048,
    n_test: int = 512,
    image_size: int = 32,
    stamp_size: int = 8,
    num_glyphs: int = 4,
    width: int = 8,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    abs: bool = True,
    reduce: str = "sum",
    model_factory: Optional[Callable[[], nn.Module]] = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    **kwargs: Any,
) -> RoarResult:
    """ROAR on freshly generated stamped images (see :func:`captum_ext.metrics.roar`).

    Args:
        methods: as :func:`captum_ext.metrics.roar`; ``"ground_truth"`` uses the stamps' footprints.
        fractions (sequence of float): removed fractions, each in (0, 1]. Default 10..90 %.
        inpainter (optional): what replaces removed pixels; default the per-channel training
            mean. (Old name ``filler``, deprecated.)
        n_train (int): training images. Default 2048.
        n_test (int): test images. Default 512.
        image_size (int): image side. Default 32.
        stamp_size (int): stamp side. Default 8.
        num_glyphs (int): stamp classes (plus one "no stamp" class). Default 4.
        width (int): StampNet width. Default 8.
        epochs, batch_size, lr, abs, reduce, seed, progress: as :func:`captum_ext.metrics.roar`.
        model_factory (callable, optional): default ``StampNet(num_glyphs + 1, width)``.
        device (str): where to train. Default "cpu".

    Returns:
        RoarResult

    Examples::

        >>> result = stamp_roar("random", fractions=[0.5], n_train=32, n_test=16, image_size=24,
        ...                     stamp_size=6, width=2, epochs=1)
        >>> result.fractions, result.accuracy["random"].shape
        ([0.0, 0.5], torch.Size([2]))
    """
    from captum_ext._checks import check_int_at_least
    from captum_ext.data import StampNet, make_stamped_batch

    check_int_at_least("n_train", n_train, 1)
    check_int_at_least("n_test", n_test, 1)
    factory = model_factory or (lambda: StampNet(num_classes=num_glyphs + 1, width=width))
    train = make_stamped_batch(n_train, image_size, stamp_size, num_glyphs, TRAIN_SEED_OFFSET + seed)
    test = make_stamped_batch(n_test, image_size, stamp_size, num_glyphs, TEST_SEED_OFFSET + seed)
    settings = dict(image_size=image_size, stamp_size=stamp_size, num_glyphs=num_glyphs, width=width)
    return roar(
        methods, train.images.to(device), train.labels.to(device), test.images.to(device), test.labels.to(device),
        factory, fractions=fractions, inpainter=inpainter, epochs=epochs, batch_size=batch_size, lr=lr, abs=abs,
        reduce=reduce, train_masks=train.masks.to(device), test_masks=test.masks.to(device), seed=seed,
        progress=progress, settings=settings, **kwargs,
    )
