"""SAM's mask post-processing, exact and fast: low-resolution logits → full-size boolean masks.

SAM upsamples 256×256 logits bilinearly to the padded 1024×1024 input, crops the padding, resizes
bilinearly to the original image size and thresholds at 0. Each step is linear and separable, so
the whole chain is ``rows @ logits @ cols.T`` with two fixed, banded matrices per image size
(each output pixel mixes at most a 3×3 patch of logits). :class:`MaskUpsampler` builds them once
and then

* computes only the output rows/columns that can be positive (an output value is a convex
  combination of the logits in its support, so it can exceed 0 only near a positive logit), and
* multiplies block by block along the band, instead of with the full dense matrices.

The result equals SAM's post-processing up to float rounding: it stays within ~1e-5 (relative to
the largest logit) of the exact float64 values, closer than SAM's own float32 ``F.interpolate``,
so only pixels whose value is that close to the threshold may differ.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_BLOCK = 256  # output samples per block of the banded products


class _AxisOperator:
    """The post-processing chain along one axis, as a banded (n_out, n_in) matrix."""

    def __init__(self, n_in: int, padded: int, valid: int, n_out: int) -> None:
        eye = torch.eye(n_in, dtype=torch.float64)[None]  # channels = input samples
        up = F.interpolate(eye, size=padded, mode="linear", align_corners=False)[..., :valid]
        out = F.interpolate(up, size=n_out, mode="linear", align_corners=False)[0].T  # (out, in)
        self.matrix = out.to(torch.float32).contiguous()
        nonzero = out != 0
        has_support = nonzero.any(dim=1).numpy()
        if not has_support.all():  # cannot happen for bilinear resizing, checked to be safe
            raise AssertionError("every output sample must depend on some input sample")
        index = torch.arange(n_in)
        # first and last input sample of each output sample's support (nondecreasing)
        self.in_first = torch.where(nonzero, index, n_in).min(dim=1).values.numpy()
        self.in_last = torch.where(nonzero, index, -1).max(dim=1).values.numpy()
        self.blocks = [
            (
                o0,
                min(o0 + _BLOCK, n_out),
                int(self.in_first[o0]),
                int(self.in_last[min(o0 + _BLOCK, n_out) - 1]) + 1,
            )
            for o0 in range(0, n_out, _BLOCK)
        ]

    def output_range(self, first: int, last: int) -> tuple[int, int]:
        """Output samples [o0, o1) whose support meets input samples first..last."""
        o0 = int(np.searchsorted(self.in_last, first, side="left"))
        o1 = int(np.searchsorted(self.in_first, last, side="right"))
        return o0, o1

    def input_range(self, o0: int, o1: int) -> tuple[int, int]:
        """Input samples [i0, i1) that output samples [o0, o1) depend on."""
        return int(self.in_first[o0]), int(self.in_last[o1 - 1]) + 1

    def blocks_in(self, o0: int, o1: int):
        """Blocks (lo, hi, i0, i1) of the band clipped to outputs [o0, o1).

        [i0, i1) are the inputs of the clipped outputs [lo, hi) only, so they lie within
        :meth:`input_range` of (o0, o1) (callers slice a window of the inputs with them).
        """
        for b0, b1, _, _ in self.blocks:
            lo, hi = max(b0, o0), min(b1, o1)
            if lo < hi:
                yield (lo, hi, *self.input_range(lo, hi))


class MaskUpsampler:
    """Turn low-resolution mask logits into boolean masks at the original image size.

    Parameters
    ----------
    low_res : (int, int)
        (rows, cols) of the logits, (256, 256) for SAM.
    padded : int
        Side of the square model input the logits cover (1024).
    input_size : (int, int)
        (rows, cols) of the resized image inside the padded input.
    original_size : (int, int)
        (rows, cols) of the original image.
    """

    def __init__(
        self,
        low_res: tuple[int, int],
        padded: int,
        input_size: tuple[int, int],
        original_size: tuple[int, int],
    ) -> None:
        self.original_size = tuple(original_size)
        self.rows = _AxisOperator(low_res[0], padded, input_size[0], original_size[0])
        self.cols = _AxisOperator(low_res[1], padded, input_size[1], original_size[1])
        self._device = torch.device("cpu")

    def to(self, device: torch.device) -> MaskUpsampler:
        if device != self._device:
            self.rows.matrix = self.rows.matrix.to(device)
            self.cols.matrix = self.cols.matrix.to(device)
            self._device = device
        return self

    def __call__(self, logits: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
        """Upsample and threshold.

        Parameters
        ----------
        logits : Tensor, shape (K, h, w)
            Low-resolution mask logits.
        threshold : float
            Logit threshold (SAM's ``mask_threshold``, 0).

        Returns
        -------
        Tensor, shape (K, H, W), bool
        """
        logits = logits.float()
        out = torch.zeros(
            (logits.shape[0], *self.original_size), dtype=torch.bool, device=logits.device
        )
        positive_rows = (logits > threshold).any(dim=2)
        positive_cols = (logits > threshold).any(dim=1)
        for k in range(logits.shape[0]):
            rows = torch.nonzero(positive_rows[k]).flatten()
            if rows.numel() == 0:
                continue
            cols = torch.nonzero(positive_cols[k]).flatten()
            r0, r1 = self.rows.output_range(int(rows[0]), int(rows[-1]))
            c0, c1 = self.cols.output_range(int(cols[0]), int(cols[-1]))
            if r0 >= r1 or c0 >= c1:
                continue
            self._threshold_window(logits[k], threshold, out[k], (r0, r1), (c0, c1))
        return out

    def _threshold_window(
        self,
        logits: torch.Tensor,
        threshold: float,
        out: torch.Tensor,
        rows: tuple[int, int],
        cols: tuple[int, int],
    ) -> None:
        """Write ``upsampled > threshold`` into ``out[r0:r1, c0:c1]``.

        Values are computed one band block of columns at a time, so the float window is never
        stored whole.

        Parameters
        ----------
        logits : Tensor, shape (h, w)
            Low-resolution logits of one mask.
        out : Tensor, shape (H, W), bool
            The full-size mask to fill.
        rows, cols : (int, int)
            Output row range (r0, r1) and column range (c0, c1) to compute.
        """
        (r0, r1), (c0, c1) = rows, cols
        b0, b1 = self.cols.input_range(c0, c1)
        partial = logits.new_empty((r1 - r0, b1 - b0))
        for lo, hi, i0, i1 in self.rows.blocks_in(r0, r1):
            torch.matmul(
                self.rows.matrix[lo:hi, i0:i1], logits[i0:i1, b0:b1], out=partial[lo - r0 : hi - r0]
            )
        col_op = self.cols.matrix
        for lo, hi, i0, i1 in self.cols.blocks_in(c0, c1):
            block = partial[:, i0 - b0 : i1 - b0] @ col_op[lo:hi, i0:i1].T
            torch.gt(block, threshold, out=out[r0:r1, lo:hi])
