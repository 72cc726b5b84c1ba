"""Graph operators: the affinity matrix ``W`` of a batch of pixel graphs behind one interface.

Both operators act on value maps ``x`` of shape (B, M, H, W): each of the M channels is a
separate right-hand side on the same graph (the graph is per image, the channels share it).

- :class:`StencilOperator` stores the K window weights as a (B, K, H, W) tensor and applies them
  with K shifted views (memory O(B H W K), no index arrays);
- :class:`CSROperator` stores a ``torch.sparse`` CSR matrix of size (B H W, B H W): block-diagonal
  when built from a window graph, or any user-given non-negative affinity (superpixel graphs,
  long-range edges).

``apply(x)`` computes ``W x``; ``matvec(x)`` computes ``P x`` with ``P = D^-1 W`` the
row-normalised transition matrix, ``D = diag(W 1)`` the degrees.
"""

import functools
import warnings
from abc import ABC, abstractmethod
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from captum_ext._utils import check_image_batch
from captum_ext.propagate.graph import shifted_slices, stencil_affinity, window_offsets

#: On a CPU, stencil passes run over chunks of images whose maps and weights fit in about this
#: many bytes, so the K passes of a chunk reuse its output and input from the cache instead of
#: streaming the whole batch from memory K times (cache blocking; every image is still computed
#: by the same batched ops). Accelerators take the whole batch at once.
CACHE_BLOCK_BYTES = 4 * 2**20


def stencil_accumulate(
    stencil: Tensor, x: Tensor, radius: int, out: Optional[Tensor] = None,
    base: Optional[Tensor] = None,
) -> Tensor:
    """``base + sum_k stencil[:, k] * x(shifted by offset k)`` for ``x`` of shape (B, M, H, W).

    ``stencil`` is (B, K, H, W), ``K = (2 radius + 1)^2``, laid out as the affinities
    (0 where a neighbour is outside the image); ``base`` (the shape of ``x``) defaults to 0.

    Examples::

        >>> s = torch.zeros(1, 9, 2, 2); s[:, 4] = 2.0
        >>> stencil_accumulate(s, torch.ones(1, 1, 2, 2), 1, base=torch.ones(1, 1, 2, 2)).flatten()
        tensor([3., 3., 3., 3.])
    """
    if out is None:
        out = torch.empty_like(x)
    batch = x.shape[0]
    per_image = (2 * x[:1].numel() * x.element_size()
                 + stencil[:1].numel() * stencil.element_size())
    chunk = batch if x.device.type != "cpu" else max(1, CACHE_BLOCK_BYTES // max(1, per_image))
    for start in range(0, batch, chunk):  # cache blocks of images on a CPU, never pixels
        stop = min(batch, start + chunk)
        _accumulate(stencil[start:stop], x[start:stop], radius, out[start:stop],
                    None if base is None else base[start:stop])
    return out


def stencil_product(
    stencil: Tensor, x: Tensor, radius: int, out: Tensor, base: Optional[Tensor] = None,
) -> Callable[[], Tensor]:
    """A function that computes ``stencil_accumulate(stencil, x, radius, out, base)`` into
    ``out``, reading ``x`` (and ``base``) as they are at each call.

    Every view of every pass is built once, so a solver's loop that multiplies the same buffers
    again and again (updated in place) pays no Python indexing per pass (about half the time of
    a pass over a small chunk of images). Same operations, same order, same result.

    Examples::

        >>> s = torch.zeros(1, 9, 2, 2); s[:, 4] = 2.0
        >>> x, out = torch.ones(1, 1, 2, 2), torch.empty(1, 1, 2, 2)
        >>> product = stencil_product(s, x, 1, out)
        >>> _ = x.fill_(3.0); product().flatten().tolist()
        [6.0, 6.0, 6.0, 6.0]
    """
    batch, _, height, width = x.shape
    center = (2 * radius + 1) ** 2 // 2
    chunk = batch if x.device.type != "cpu" else max(1, CACHE_BLOCK_BYTES // max(1, (
        2 * x[:1].numel() * x.element_size() + stencil[:1].numel() * stencil.element_size())))
    plans = []
    for start in range(0, batch, chunk):  # cache blocks of images on a CPU, never pixels
        rows = slice(start, min(batch, start + chunk))
        s_c, x_c, o_c = stencil[rows], x[rows], out[rows]
        passes = [(o_c[t], s_c[:, k : k + 1][t], x_c[src])
                  for k, t, src in _window_slices(radius, height, width)]
        plans.append((o_c, s_c[:, center : center + 1], x_c,
                      None if base is None else base[rows], passes))

    def product() -> Tensor:
        for o_c, s_center, x_c, b_c, passes in plans:
            if b_c is None:
                torch.mul(x_c, s_center, out=o_c)
            else:
                torch.addcmul(b_c, s_center, x_c, out=o_c)
            for o_view, s_view, x_view in passes:
                o_view.addcmul_(s_view, x_view)
        return out

    return product


@functools.lru_cache(maxsize=64)
def _window_slices(radius: int, height: int, width: int) -> Tuple[Tuple[int, tuple, tuple], ...]:
    """``(k, target, source)`` index tuples of the non-centre offsets that reach inside the image
    (computed once per grid: building slices per pass cost as much as a small pass)."""
    passes = []
    offsets = window_offsets(radius)
    for k, (dy, dx) in enumerate(offsets):  # K offsets, never pixels
        (ty, tx), (sy, sx) = shifted_slices(dy, dx, height, width)
        if k != len(offsets) // 2 and ty.stop > ty.start and tx.stop > tx.start:
            passes.append((k, (Ellipsis, ty, tx), (Ellipsis, sy, sx)))
    return tuple(passes)


def _accumulate(stencil: Tensor, x: Tensor, radius: int, out: Tensor,
                base: Optional[Tensor]) -> None:
    height, width = x.shape[2:]
    center = (2 * radius + 1) ** 2 // 2
    # the centre offset covers every pixel, so it initialises the output
    if base is None:
        torch.mul(x, stencil[:, center : center + 1], out=out)
    else:
        torch.addcmul(base, stencil[:, center : center + 1], x, out=out)
    for k, target, source in _window_slices(radius, height, width):
        out[target].addcmul_(stencil[:, k : k + 1][target], x[source])


class GraphOperator(ABC):
    """A batch of pixel graphs: ``apply`` (``W x``), ``matvec`` (``P x``) and the degrees.

    Attributes:
        shape (tuple): ``(B, H, W)`` of the graphs.
        degree (Tensor): (B, 1, H, W) row sums of ``W`` (all > 0).
        block_diagonal (bool): whether images of the batch are disconnected from each other.

    Examples::

        >>> op = StencilOperator.from_guide(torch.rand(2, 3, 8, 8))
        >>> isinstance(op, GraphOperator), op.shape, op.block_diagonal
        (True, (2, 8, 8), True)
    """

    shape: Tuple[int, int, int]
    degree: Tensor
    block_diagonal: bool = True

    @abstractmethod
    def apply(self, x: Tensor, out: Optional[Tensor] = None) -> Tensor:
        """``W x`` for ``x`` of shape (B, M, H, W); written into ``out`` when given."""

    def matvec(self, x: Tensor) -> Tensor:
        """``P x = D^-1 W x`` for ``x`` of shape (B, M, H, W)."""
        return self.apply(x) / self.degree

    def step(
        self, x: Tensor, reward: Tensor, gamma: float, out: Optional[Tensor] = None,
        scratch: Optional[Tensor] = None,
    ) -> Tensor:
        """One value-iteration step ``reward + gamma P x``, written into ``out`` when given.

        ``scratch`` (the shape of ``x``) may be used as workspace.
        """
        cached = getattr(self, "_degree_over_gamma", None)
        if cached is None or cached[0] != gamma:
            cached = (gamma, self.degree / gamma)
            self._degree_over_gamma = cached
        return torch.addcdiv(reward, self.apply(x, out=scratch), cached[1], out=out)

    @abstractmethod
    def to_dense(self) -> Tensor:
        """``W`` as a dense (B H W, B H W) matrix (for tests on small images)."""

    @abstractmethod
    def is_symmetric(self) -> bool:
        """Whether ``W = W^T`` (needed by the conjugate-gradient solver)."""

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes held by the operator's tensors."""

    def check_values(self, x: Tensor, name: str = "x") -> None:
        """Raise ``ValueError`` unless ``x`` is (B, M, H, W) with this operator's B, H, W."""
        check_image_batch(name, x)
        batch, height, width = self.shape
        if (x.shape[0], x.shape[2], x.shape[3]) != (batch, height, width):
            raise ValueError(
                f"`{name}` has shape {tuple(x.shape)}, but the graph is for (B, H, W) = "
                f"{self.shape}"
            )


class StencilOperator(GraphOperator):
    r"""Window-graph affinities stored as a (B, K, H, W) stencil and applied by shifted views.

    Args:
        weights (Tensor): (B, K, H, W) non-negative weights, ``K = (2 r + 1)^2``, laid out as in
            :func:`~captum_ext.propagate.graph.stencil_affinity` (0 outside the image).

    Examples::

        >>> op = StencilOperator.from_guide(torch.rand(2, 3, 8, 8), sigma_c=0.2)
        >>> x = torch.ones(2, 4, 8, 8)
        >>> torch.allclose(op.matvec(x), x)  # rows of P sum to 1
        True
    """

    def __init__(self, weights: Tensor, validate: bool = True) -> None:
        check_image_batch("weights", weights)
        side = int(round(weights.shape[1] ** 0.5))
        if side * side != weights.shape[1] or side % 2 == 0:
            raise ValueError(
                f"`weights` must have K = (2r+1)^2 entries on dim 1, got {weights.shape[1]}"
            )
        if validate and (bool((weights < 0).any()) or not bool(torch.isfinite(weights).all())):
            raise ValueError("`weights` must be finite and non-negative")
        self.weights = weights
        self.radius = side // 2
        self.offsets = window_offsets(self.radius)
        batch, _, height, width = weights.shape
        self.shape = (batch, height, width)
        degree = weights.sum(dim=1, keepdim=True)
        if bool((degree <= 0).any()):
            raise ValueError("every pixel needs at least one edge of positive weight")
        self.degree = degree
        self.block_diagonal = True

    @classmethod
    def from_guide(cls, guide: Tensor, **graph_options) -> "StencilOperator":
        """Build from a guide image; ``graph_options`` go to ``stencil_affinity``."""
        return cls(stencil_affinity(guide, **graph_options), validate=False)  # valid by construction

    def step(
        self, x: Tensor, reward: Tensor, gamma: float, out: Optional[Tensor] = None,
        scratch: Optional[Tensor] = None,
    ) -> Tensor:
        """``reward + gamma P x`` in K fused multiply-adds, with ``gamma D^-1 W`` cached."""
        cached = getattr(self, "_transition", None)
        if cached is None or cached[0] != gamma:
            cached = (gamma, self.weights * (gamma / self.degree))
            self._transition = cached
        return stencil_accumulate(cached[1], x, self.radius, out=out, base=reward)

    def apply(self, x: Tensor, out: Optional[Tensor] = None) -> Tensor:
        self.check_values(x)
        return stencil_accumulate(self.weights, x, self.radius, out=out)

    def to_dense(self) -> Tensor:
        return CSROperator.from_stencil(self).to_dense()

    def is_symmetric(self) -> bool:
        return True  # w_ij is a function of |p_i - p_j| and |c_i - c_j|

    @property
    def nbytes(self) -> int:
        return self.weights.nbytes + self.degree.nbytes


class CSROperator(GraphOperator):
    r"""Affinities as one ``torch.sparse`` CSR matrix of size (B H W, B H W).

    Row and column ``b * H * W + y * W + x`` is pixel ``(y, x)`` of image ``b``. A window graph
    gives a block-diagonal matrix (:meth:`from_stencil`, :meth:`from_guide`); any non-negative
    affinity may be given (superpixel graphs, long-range edges, edges between images).

    Args:
        affinity (Tensor): sparse (COO or CSR) or dense (N, N) non-negative matrix,
            ``N = B * H * W``. Every row needs a positive entry.
        shape (tuple): ``(B, H, W)`` of the value maps it acts on.

    Examples::

        >>> ring = torch.tensor([[1.0, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]])
        >>> op = CSROperator(ring.to_sparse_csr(), shape=(1, 2, 2))
        >>> op.matvec(torch.ones(1, 1, 2, 2)).flatten()
        tensor([1., 1., 1., 1.])
    """

    def __init__(self, affinity: Tensor, shape: Tuple[int, int, int]) -> None:
        self._symmetric: Optional[bool] = None  # computed on first use
        if not isinstance(affinity, Tensor):
            raise TypeError(f"`affinity` must be a torch.Tensor, got {type(affinity).__name__}")
        if len(shape) != 3 or any(int(s) <= 0 for s in shape):
            raise ValueError(f"`shape` must be (B, H, W) of positive ints, got {shape}")
        batch, height, width = (int(s) for s in shape)
        size = batch * height * width
        if affinity.dim() != 2 or tuple(affinity.shape) != (size, size):
            raise ValueError(
                f"`affinity` must be ({size}, {size}) for shape {shape}, got "
                f"{tuple(affinity.shape)}"
            )
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            matrix = affinity if affinity.layout == torch.sparse_csr else affinity.to_sparse_csr()
        values = matrix.values()
        if bool((values < 0).any()) or not bool(torch.isfinite(values).all()):
            raise ValueError("`affinity` must be finite and non-negative")
        self.matrix = matrix
        self.shape = (batch, height, width)
        ones = torch.ones(size, 1, dtype=values.dtype, device=values.device)
        degree = (matrix @ ones).view(batch, 1, height, width)
        if bool((degree <= 0).any()):
            raise ValueError("every row of `affinity` needs a positive entry")
        self.degree = degree
        rows = self._row_indices()
        pixels = height * width
        self.block_diagonal = bool(
            torch.equal(rows // pixels, matrix.col_indices().to(rows.dtype) // pixels)
        )

    @classmethod
    def from_stencil(cls, stencil: StencilOperator) -> "CSROperator":
        """The same graph as ``stencil``, as a block-diagonal CSR matrix (zero weights dropped)."""
        batch, height, width = stencil.shape
        weights = stencil.weights
        device = weights.device
        ys = torch.arange(height, device=device).view(1, height, 1)
        xs = torch.arange(width, device=device).view(1, 1, width)
        dys = torch.tensor([o[0] for o in stencil.offsets], device=device).view(-1, 1, 1)
        dxs = torch.tensor([o[1] for o in stencil.offsets], device=device).view(-1, 1, 1)
        ny, nx = ys + dys, xs + dxs  # (K, H, W) neighbour coordinates
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        images = torch.arange(batch, device=device).view(batch, 1, 1, 1) * (height * width)
        cols = images + (ny * width + nx).unsqueeze(0)  # (B, K, H, W)
        keep = inside.unsqueeze(0) & (weights > 0)
        # row-major over (b, y, x), neighbours in window order: columns ascend within a row
        keep_r, cols_r, vals_r = (t.permute(0, 2, 3, 1) for t in (keep, cols, weights))
        counts = keep_r.sum(dim=-1).flatten()
        crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        size = batch * height * width
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(
                crow, cols_r[keep_r], vals_r[keep_r], size=(size, size)
            )
        operator = cls(matrix, shape=stencil.shape)
        operator._symmetric = True  # window graphs are symmetric by construction
        return operator

    @classmethod
    def from_guide(cls, guide: Tensor, **graph_options) -> "CSROperator":
        """Build the window graph of a guide image; ``graph_options`` go to ``stencil_affinity``."""
        return cls.from_stencil(StencilOperator.from_guide(guide, **graph_options))

    def _row_indices(self) -> Tensor:
        crow = self.matrix.crow_indices()
        rows = torch.arange(crow.numel() - 1, device=crow.device, dtype=crow.dtype)
        return torch.repeat_interleave(rows, crow.diff())

    def apply(self, x: Tensor, out: Optional[Tensor] = None) -> Tensor:
        self.check_values(x)
        batch, height, width = self.shape
        channels = x.shape[1]
        columns = x.permute(0, 2, 3, 1).reshape(batch * height * width, channels)
        result = (self.matrix @ columns).view(batch, height, width, channels).permute(0, 3, 1, 2)
        if out is None:
            return result.contiguous()
        return out.copy_(result)

    def to_dense(self) -> Tensor:
        return self.matrix.to_dense()

    def is_symmetric(self) -> bool:
        if self._symmetric is None:
            coo = self.matrix.to_sparse_coo().coalesce()
            difference = (coo - coo.t()).coalesce().values()
            scale = coo.values().abs().max() if coo.values().numel() else 1.0
            self._symmetric = bool(
                difference.numel() == 0 or difference.abs().max() <= 1e-6 * scale
            )
        return self._symmetric

    @property
    def nbytes(self) -> int:
        m = self.matrix
        parts = (m.crow_indices(), m.col_indices(), m.values(), self.degree)
        return sum(p.nbytes for p in parts)
