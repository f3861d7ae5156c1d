"""A dense head that turns an image embedding into foreground, object-centre and boundary maps.

SAM finds every object by decoding a grid of point prompts, hundreds of decoder passes per image.
A model trained for cells can instead predict, in one pass over the embedding,

* a foreground logit per pixel (inside any object or not), and
* a centre logit per pixel, whose sigmoid is the pixel's distance to its object's border
  divided by the largest such distance in that object (1 at the centre, 0 at the border), and
* a boundary logit per pixel: inside an object and within 2 px of a *different* object, i.e. on
  the line where two touching objects meet.

Instances then follow from a seeded watershed (:mod:`napari_segany.inference.instance_labels`): each
region of high centre value seeds one object, and touching objects separate along their border
because the centre value dips there. Where two nuclei of similar brightness touch along a long,
weak border the centre dip is shallow; the boundary map marks that border directly, and the
watershed subtracts it from the centre map so the two seeds stay apart.

Layout: a 3×3 context convolution on the stride-16 embedding, a 1×1 expansion and a pixel
shuffle to a stride-4 map (the cell encoder packs stride-4 detail into each token), two 3×3
refinements, and a 1×1 output with one channel per map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_segany.models.common import ConvBN

FOREGROUND, CENTRE, BOUNDARY = 0, 1, 2
#: Number of maps the head predicts (output channels).
N_MAPS = 3


class InstanceHead(nn.Module):
    """Foreground, centre and boundary logits from an embedding.

    Parameters
    ----------
    embed_dim : int
        Channels of the image embedding (256).
    context_dim : int
        Channels after the stride-16 context convolution.
    fine_dim : int
        Channels of the stride-4 map.

    Forward input (B, embed_dim, h, w); output (B, 3, 4h, 4w) logits, channels
    :data:`FOREGROUND`, :data:`CENTRE` and :data:`BOUNDARY`, at a quarter of the model-input
    resolution.
    """

    def __init__(self, embed_dim: int = 256, context_dim: int = 128, fine_dim: int = 32) -> None:
        super().__init__()
        self.context = ConvBN(embed_dim, context_dim, 3)
        self.expand = nn.Conv2d(context_dim, fine_dim * 16, 1)
        self.refine = nn.ModuleList([ConvBN(fine_dim, fine_dim, 3), ConvBN(fine_dim, fine_dim, 3)])
        self.out = nn.Conv2d(fine_dim, N_MAPS, 1)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.context(embedding))
        x = F.pixel_shuffle(self.expand(x), 4)
        for layer in self.refine:
            x = x + F.gelu(layer(x))
        return self.out(x)
