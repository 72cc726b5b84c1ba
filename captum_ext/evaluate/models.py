"""Loading the classifier for ``captum-ext evaluate``, without downloads and without unpickling.

``--model`` forms:

- ``torchvision:NAME``: any torchvision classification builder, built with ``weights=None``
  (nothing is downloaded); ``--weights file.pth`` then loads a state dict;
- ``package.module:factory``: ``factory()`` returns an ``nn.Module`` (``--weights`` optional);
- a file: a TorchScript archive (``torch.jit.save``). A file that is a whole pickled model is
  refused unless ``trust_pickle=True``: unpickling runs arbitrary code from the file.

State dicts are read with ``torch.load(weights_only=True)``.
"""

import importlib
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from torch import Tensor, nn

__all__ = ["Normalized", "load_model", "load_state_dict"]


class Normalized(nn.Module):
    """``model((x - mean) / std)``: the model sees normalised images, callers pass [0, 1] images.

    Examples::

        >>> net = Normalized(nn.Identity(), (0.5,), (0.5,))
        >>> net(torch.ones(1, 1, 1, 1)).item()
        1.0
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    mean: Tensor
    std: Tensor

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def load_state_dict(path: "str | Path") -> Dict[str, Tensor]:
    """A state dict from ``path`` with ``weights_only=True`` (``{"state_dict": ...}`` is unwrapped).

    Raises:
        ValueError: naming ``--weights`` when the file is missing, holds pickled objects or
            is not a mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--weights: no such file: {path} (nothing is downloaded; save a state dict there)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors have many types
        raise ValueError(
            f"--weights: {path} is not a plain state dict readable with weights_only=True ({type(error).__name__}); "
            "save model.state_dict() instead of the whole model"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"--weights: {path} does not hold a state dict (a mapping of names to tensors)")
    return state


def _torchvision(name: str, kwargs: Dict[str, Any]) -> nn.Module:
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ValueError(f"--model: torchvision has no classification model {name!r}; e.g. {available[:6]}")
    return torchvision.models.get_model(name, weights=None, **kwargs)


def _factory(spec: str, kwargs: Dict[str, Any]) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"--model: cannot import {module_name!r}: {error}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"--model: {module_name!r} has no callable {attr!r}")
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model: {spec}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _from_file(path: Path, trust_pickle: bool) -> nn.Module:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_script = any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
        if is_script:
            try:
                return torch.jit.load(str(path), map_location="cpu")
            except RuntimeError as error:
                raise ValueError(f"--model: cannot load TorchScript file {path}: {error}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        if not trust_pickle:
            raise ValueError(
                f"--model: {path} is a pickled Python object; unpickling runs arbitrary code from the file, "
                "so it is refused. Save a TorchScript file or a state dict (--model torchvision:NAME --weights), "
                "or pass --trust-pickle if you trust its author"
            ) from None
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, nn.Module):
        return obj
    raise ValueError(
        f"--model: {path} holds a {type(obj).__name__} (a state dict?), not a model; "
        "use --model torchvision:NAME or package.module:factory with --weights FILE"
    )


def load_model(
    spec: str,
    weights: "str | Path | None" = None,
    trust_pickle: bool = False,
    kwargs: Optional[Dict[str, Any]] = None,
) -> nn.Module:
    """Build the model named by ``spec`` (see the module docstring) and load ``weights``.

    Args:
        spec (str): ``torchvision:NAME``, ``package.module:factory`` or a TorchScript file.
        weights (str or Path, optional): a state dict file.
        trust_pickle (bool): allow a file that is a whole pickled model. Default False.
        kwargs (dict, optional): keyword arguments of the builder (e.g. ``num_classes``).

    Returns:
        nn.Module: the model on the CPU, in ``eval()`` mode.

    Raises:
        ValueError: naming ``--model`` or ``--weights``.

    Examples::

        >>> net = load_model("torchvision:resnet18", kwargs={"num_classes": 3})
        >>> net(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3])
    """
    kwargs = dict(kwargs or {})
    path = Path(spec)
    if spec.startswith("torchvision:"):
        model = _torchvision(spec.split(":", 1)[1], kwargs)
    elif path.suffix in (".pt", ".pth", ".ts", ".jit", ".pkl") or path.exists():
        if not path.is_file():
            raise ValueError(f"--model: no such file: {path}")
        if kwargs:
            raise ValueError("--num-classes applies to builders, not to a model file")
        model = _from_file(path, trust_pickle)
    elif ":" in spec:
        model = _factory(spec, kwargs)
    else:
        raise ValueError(
            f"--model: {spec!r} is neither torchvision:NAME, package.module:factory nor an existing file"
        )
    if weights is not None:
        state = load_state_dict(weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).strip().splitlines()
            raise ValueError(f"--weights: {weights} does not fit {spec}: {' '.join(first[:3])}") from None
    return model.eval()
