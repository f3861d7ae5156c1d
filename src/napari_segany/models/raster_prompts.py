"""A prompt encoder that also draws the prompts as images, for models trained from scratch.

SAM's decoder finds where a click is only through the positional encodings of the click and of
the image tokens, a correspondence it learned from a billion masks. A small model trained from
scratch on synthetic cells learns far faster when the prompts are also given where they are:
:class:`RasterPromptEncoder` renders positive clicks, negative clicks and boxes as three maps at
the mask resolution (stride 4), embeds them with a small convolution stack like the mask prompt's,
and adds the result to the dense prompt embedding. The sparse tokens and the interface are
unchanged, so predictors treat the model like any SAM model. The dense embedding now depends on
the prompts (``dense_depends_on_prompts``), so no prompt-independent decoder state is cached.
"""

from __future__ import annotations

import torch

from napari_segany.models.prompt_encoder import PromptEncoder, downscaling_stack

#: Standard deviation of a drawn click, in mask pixels (stride 4).
CLICK_SIGMA = 1.5


class RasterPromptEncoder(PromptEncoder):
    """:class:`PromptEncoder` plus drawn prompts in the dense embedding (see module docs)."""

    dense_depends_on_prompts = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        hidden = 16
        self.prompt_downscaling = downscaling_stack(3, hidden // 2, hidden, self.embed_dim)

    def draw(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        batch: int,
        grid: tuple[int, int],
        origin: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Maps of positive clicks, negative clicks and boxes at 4× the embedding grid.

        Coordinates are SAM's (x, y) in input pixels. The maps cover the embedding grid's area,
        which starts at ``origin`` (B, 2) as (x, y) pixels (0: the input's origin; training
        crops placed elsewhere in the input frame pass their offset). Returns (B, 3, 4h, 4w).
        """
        h, w = 4 * grid[0], 4 * grid[1]
        device = self.no_mask_embed.weight.device
        maps = torch.zeros(batch, 3, h, w, device=device)
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * 4
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * 4
        shift = torch.zeros(batch, 2, device=device) if origin is None else origin.float()
        if points is not None:
            coords, labels = points
            coords = coords.float() + 0.5 - shift[:, None]
            sigma = CLICK_SIGMA * 4
            gy = torch.exp(-((ys[None, None, :] - coords[..., 1:2]) ** 2) / (2 * sigma**2))
            gx = torch.exp(-((xs[None, None, :] - coords[..., 0:1]) ** 2) / (2 * sigma**2))
            blobs = gy[..., :, None] * gx[..., None, :]  # (B, N, h, w)
            for channel, label in ((0, 1), (1, 0)):
                weight = (labels == label).float()[..., None, None]
                maps[:, channel] = (blobs * weight).amax(dim=1)
        if boxes is not None:
            b = boxes.float().reshape(-1, 4) + 0.5 - shift.repeat(1, 2)
            inside_y = (ys[None] >= b[:, 1:2]) & (ys[None] <= b[:, 3:4])
            inside_x = (xs[None] >= b[:, 0:1]) & (xs[None] <= b[:, 2:3])
            maps[:, 2] = (inside_y[:, :, None] & inside_x[:, None, :]).float()
        return maps

    def forward(self, points, boxes, masks, grid=None, origin=None):
        sparse, dense = super().forward(points, boxes, masks, grid)
        grid = grid or self.image_embedding_size
        drawn = self.draw(points, boxes, sparse.shape[0], grid, origin)
        return sparse, dense + self.prompt_downscaling(drawn)
