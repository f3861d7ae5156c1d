"""Small building blocks shared by the image encoders, the prompt encoder and the mask decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _building_on_meta() -> bool:
    return torch.get_default_device().type == "meta"


# Models are built on the meta device before their weights are loaded. There, random
# initialisers import torch._dynamo and sympy (about a second, holding the GIL: a GUI whose
# worker loads the model freezes), and their values are thrown away anyway.


def random_normal(*shape: int) -> torch.Tensor:
    """``torch.randn(*shape)``; uninitialised when built on the meta device."""
    return torch.empty(*shape) if _building_on_meta() else torch.randn(*shape)


def embedding(num_embeddings: int, embedding_dim: int) -> nn.Embedding:
    """An ``nn.Embedding`` (learned tokens); uninitialised when built on the meta device."""
    if _building_on_meta():
        weight = torch.empty(num_embeddings, embedding_dim)
        return nn.Embedding(num_embeddings, embedding_dim, _weight=weight)
    return nn.Embedding(num_embeddings, embedding_dim)


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of a (B, C, H, W) feature map.

    Parameters
    ----------
    num_channels : int
        Number of channels C; ``weight`` and ``bias`` have shape (C,).
    eps : float
        Added to the variance for numerical stability.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # layer_norm normalises trailing dims, so move channels last and back (a view, no copy
        # of the data until the kernel runs)
        y = nn.functional.layer_norm(
            x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps
        )
        return y.permute(0, 3, 1, 2)


class MLPBlock(nn.Module):
    """Two linear layers with an activation between them: ``lin2(act(lin1(x)))``.

    Parameters
    ----------
    embedding_dim : int
        Input and output feature size.
    mlp_dim : int
        Hidden feature size.
    act : type of nn.Module
        Activation class (GELU in the image encoder, ReLU in the two-way transformer).
    """

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class MLP(nn.Module):
    """A stack of linear layers with ReLU between them (no activation after the last one).

    Used by the mask decoder's hypernetworks and IoU head. Layers are stored in ``layers``
    (a ModuleList), which fixes the checkpoint key names ``layers.{i}.weight``.

    Parameters
    ----------
    input_dim, hidden_dim, output_dim : int
        Feature sizes of the input, the hidden layers and the output.
    num_layers : int
        Number of linear layers.
    sigmoid_output : bool
        Apply a sigmoid to the output.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = torch.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class ConvBN(nn.Module):
    """Convolution without bias followed by BatchNorm2d (eps 1e-5).

    Parameters
    ----------
    in_chans, out_chans : int
        Channel counts.
    kernel_size, stride, groups : int
        Convolution settings; the padding is ``kernel_size // 2``.
    """

    def __init__(
        self, in_chans: int, out_chans: int, kernel_size: int = 1, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(
            in_chans, out_chans, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, in_chans, H, W) to (B, out_chans, H', W')."""
        bn = self.bn
        if bn.training or bn.running_var is None:  # batch statistics
            return bn(self.c(x))
        # Inference: fold the running statistics into the conv (one pass over x instead of two).
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight = self.c.weight * scale.view(-1, 1, 1, 1)
        bias = bn.bias - bn.running_mean * scale
        conv = self.c
        return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
