"""Tests of the MobileSAM TinyViT image encoder (``vit_t``).

The expected state-dict layout is written out from the tables of
``shared/reference/sam-checkpoints.md`` (sections 3.3 and 4.3); the numerical checks compare the
modules against plain loop-based implementations written here.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from napari_segany.models.tiny_vit import (
    Attention,
    TinyViT,
    TinyViTBlock,
    relative_offset_index,
)

PREFIX = "image_encoder."


def _expected_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the published vit_t image encoder, with the ``image_encoder.`` prefix."""
    exp: dict[str, tuple[int, ...]] = {}

    def conv_bn(name: str, weight_shape: tuple[int, ...]) -> None:
        exp[f"{name}.c.weight"] = weight_shape
        for stat in ("weight", "bias", "running_mean", "running_var"):
            exp[f"{name}.bn.{stat}"] = (weight_shape[0],)
        exp[f"{name}.bn.num_batches_tracked"] = ()

    conv_bn("patch_embed.seq.0", (32, 3, 3, 3))
    conv_bn("patch_embed.seq.2", (64, 32, 3, 3))
    for b in range(2):
        conv_bn(f"layers.0.blocks.{b}.conv1", (256, 64, 1, 1))
        conv_bn(f"layers.0.blocks.{b}.conv2", (256, 1, 3, 3))
        conv_bn(f"layers.0.blocks.{b}.conv3", (64, 256, 1, 1))
    for s, (cin, cout) in enumerate([(64, 128), (128, 160), (160, 320)]):
        conv_bn(f"layers.{s}.downsample.conv1", (cout, cin, 1, 1))
        conv_bn(f"layers.{s}.downsample.conv2", (cout, 1, 3, 3))
        conv_bn(f"layers.{s}.downsample.conv3", (cout, cout, 1, 1))
    for s, depth, c, heads, w in [(1, 2, 128, 4, 7), (2, 6, 160, 5, 14), (3, 2, 320, 10, 7)]:
        for b in range(depth):
            p = f"layers.{s}.blocks.{b}"
            exp[f"{p}.attn.attention_biases"] = (heads, w * w)
            exp[f"{p}.attn.norm.weight"] = exp[f"{p}.attn.norm.bias"] = (c,)
            exp[f"{p}.attn.qkv.weight"], exp[f"{p}.attn.qkv.bias"] = (3 * c, c), (3 * c,)
            exp[f"{p}.attn.proj.weight"], exp[f"{p}.attn.proj.bias"] = (c, c), (c,)
            exp[f"{p}.mlp.norm.weight"] = exp[f"{p}.mlp.norm.bias"] = (c,)
            exp[f"{p}.mlp.fc1.weight"], exp[f"{p}.mlp.fc1.bias"] = (4 * c, c), (4 * c,)
            exp[f"{p}.mlp.fc2.weight"], exp[f"{p}.mlp.fc2.bias"] = (c, 4 * c), (c,)
            conv_bn(f"{p}.local_conv", (c, 1, 3, 3))
    exp["norm_head.weight"] = exp["norm_head.bias"] = (320,)
    exp["head.weight"], exp["head.bias"] = (1000, 320), (1000,)
    exp["neck.0.weight"] = (256, 320, 1, 1)
    exp["neck.1.weight"] = exp["neck.1.bias"] = (256,)
    exp["neck.2.weight"] = (256, 256, 3, 3)
    exp["neck.3.weight"] = exp["neck.3.bias"] = (256,)
    return {PREFIX + k: v for k, v in exp.items()}


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every float parameter and BN statistic with random values (variances positive)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif name.endswith("weight") and t.ndim == 1:  # norm / BN scales
                t.copy_(1.0 + 0.2 * torch.randn(t.shape, generator=gen))
            elif "attention_biases" in name:
                t.copy_(torch.randn(t.shape, generator=gen))
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
    return module


@pytest.fixture(scope="module")
def tiny_vit_encoder() -> TinyViT:
    """A bare TinyViT image encoder (not a SamModel) for 256 px input, random weights, eval mode."""
    return _randomize(TinyViT(img_size=256)).eval()


@pytest.fixture(scope="module")
def small_input() -> torch.Tensor:
    return torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))


def test_state_dict_keys_and_shapes_match_checkpoint_layout():
    sd = TinyViT().state_dict()
    got = {PREFIX + k: tuple(v.shape) for k, v in sd.items()}
    assert got == _expected_layout()
    for k, v in sd.items():
        assert v.dtype == (torch.int64 if k.endswith("num_batches_tracked") else torch.float32), k
    # key order inside a block, as documented
    block_keys = [k for k in sd if k.startswith("layers.2.blocks.3.")]
    order = ["attn.attention_biases", "attn.norm", "attn.qkv", "attn.proj"]
    order += ["mlp.norm", "mlp.fc1", "mlp.fc2", "local_conv"]
    firsts = [
        next(i for i, k in enumerate(block_keys) if k[len("layers.2.blocks.3.") :].startswith(o))
        for o in order
    ]
    assert firsts == sorted(firsts)


def test_key_and_element_counts():
    sd = TinyViT().state_dict()
    assert len(sd) == 302
    bn_buffers = [
        k for k in sd if k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    ]
    assert len(bn_buffers) == 81
    assert sum(v.numel() for v in sd.values()) == 6_075_415
    head = sum(v.numel() for k, v in sd.items() if k.startswith(("head.", "norm_head.")))
    assert head == 321_640


def test_index_buffer_is_not_saved():
    model = TinyViT(img_size=256)
    buffers = dict(model.named_buffers())
    assert "layers.1.blocks.0.attn.attention_bias_idxs" in buffers
    assert not any("attention_bias_idxs" in k for k in model.state_dict())


def test_patch_merging_strides():
    model = TinyViT(img_size=256)
    strides = [model.layers[s].downsample.conv2.c.stride for s in range(3)]
    assert strides == [(2, 2), (2, 2), (1, 1)]
    assert model.layers[3].downsample is None


def test_forward_1024_shape_and_finite():
    model = _randomize(TinyViT(), seed=3).eval()
    assert model.img_size == 1024
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 256, 64, 64)
    assert y.is_contiguous()
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("img_size", [256, 224])
def test_forward_derives_grid_from_img_size(img_size):
    model = _randomize(TinyViT(img_size=img_size)).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, img_size, img_size))
    assert y.shape == (1, 256, img_size // 16, img_size // 16)
    assert torch.isfinite(y).all()


def test_rejects_wrong_input_shape(tiny_vit_encoder):
    with pytest.raises(ValueError, match="expected input"):
        tiny_vit_encoder(torch.zeros(1, 3, 128, 128))


@pytest.mark.parametrize("w", [1, 2, 5, 7])
def test_relative_offset_index(w):
    idx = relative_offset_index(w)
    assert idx.shape == (w * w, w * w)
    assert torch.equal(idx, _loop_index(w))
    assert torch.equal(Attention(8, 2, w).attention_bias_idxs, idx)


@functools.cache
def _loop_index(w: int) -> torch.Tensor:
    """Bias index |drow|*w + |dcol| for every pair of row-major window positions, by loops."""
    idx = torch.empty(w * w, w * w, dtype=torch.int64)
    for i in range(w * w):
        for j in range(w * w):
            (ri, ci), (rj, cj) = divmod(i, w), divmod(j, w)
            idx[i, j] = abs(ri - rj) * w + abs(ci - cj)
    return idx


def _naive_attention(attn: Attention, tokens: torch.Tensor, w: int) -> torch.Tensor:
    """Attention of one window (w*w, C), one head at a time, qkv rows grouped [q, k, v] per head."""
    c = tokens.shape[1]
    d = c // attn.num_heads
    mu = tokens.mean(-1, keepdim=True)
    var = ((tokens - mu) ** 2).mean(-1, keepdim=True)
    xn = (tokens - mu) / torch.sqrt(var + 1e-5) * attn.norm.weight + attn.norm.bias
    qkv = xn @ attn.qkv.weight.T + attn.qkv.bias
    outs = []
    for h in range(attn.num_heads):
        q, k, v = (qkv[:, 3 * d * h + part * d : 3 * d * h + (part + 1) * d] for part in range(3))
        logits = q @ k.T / math.sqrt(d) + attn.attention_biases[h][_loop_index(w)]
        outs.append(torch.softmax(logits, -1) @ v)
    return torch.cat(outs, -1) @ attn.proj.weight.T + attn.proj.bias


def _naive_conv_bn(cb, x: torch.Tensor) -> torch.Tensor:
    """ConvBN with the BatchNorm running statistics written out. x is (B, C, H, W)."""
    c, bn = cb.c, cb.bn
    y = F.conv2d(x, c.weight, None, c.stride, c.padding, c.dilation, c.groups)
    shape = (1, -1, 1, 1)
    y = (y - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + 1e-5)
    return y * bn.weight.view(shape) + bn.bias.view(shape)


def _naive_block(block: TinyViTBlock, x: torch.Tensor) -> torch.Tensor:
    """TinyViT block on a (B, H, W, C) grid: zero padding, window loops, local conv, MLP."""
    batch, height, width, dim = x.shape
    w = block.window_size
    ph, pw = -(-height // w) * w, -(-width // w) * w
    padded = x.new_zeros(batch, ph, pw, dim)
    padded[:, :height, :width] = x
    att = torch.zeros_like(padded)
    for b in range(batch):
        for r in range(0, ph, w):
            for c in range(0, pw, w):
                win = padded[b, r : r + w, c : c + w].reshape(w * w, dim)
                att[b, r : r + w, c : c + w] = _naive_attention(block.attn, win, w).view(w, w, dim)
    y = x + att[:, :height, :width]
    z = _naive_conv_bn(block.local_conv, y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    m = block.mlp
    zn = F.layer_norm(z, (dim,), m.norm.weight, m.norm.bias, 1e-5)
    return z + F.gelu(zn @ m.fc1.weight.T + m.fc1.bias) @ m.fc2.weight.T + m.fc2.bias


def _naive_layer_norm_2d(ln, x: torch.Tensor) -> torch.Tensor:
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-6) * ln.weight.view(1, -1, 1, 1) + ln.bias.view(
        1, -1, 1, 1
    )


def _naive_merge(merge, x: torch.Tensor) -> torch.Tensor:
    x = F.gelu(_naive_conv_bn(merge.conv1, x))
    return _naive_conv_bn(merge.conv3, F.gelu(_naive_conv_bn(merge.conv2, x)))


def _naive_encoder(model: TinyViT, x: torch.Tensor) -> torch.Tensor:
    seq = model.patch_embed.seq
    x = _naive_conv_bn(seq[2], F.gelu(_naive_conv_bn(seq[0], x)))
    for mb in model.layers[0].blocks:
        y = F.gelu(_naive_conv_bn(mb.conv2, F.gelu(_naive_conv_bn(mb.conv1, x))))
        x = F.gelu(x + _naive_conv_bn(mb.conv3, y))
    x = _naive_merge(model.layers[0].downsample, x)
    for layer in model.layers[1:]:
        x = x.permute(0, 2, 3, 1)
        for block in layer.blocks:
            x = _naive_block(block, x)
        x = x.permute(0, 3, 1, 2)
        if layer.downsample is not None:
            x = _naive_merge(layer.downsample, x)
    neck = model.neck
    x = _naive_layer_norm_2d(neck[1], F.conv2d(x, neck[0].weight))
    return _naive_layer_norm_2d(neck[3], F.conv2d(x, neck[2].weight, padding=1))


@torch.no_grad()
def test_attention_matches_naive_per_head_qkv():
    w = 3
    attn = _randomize(Attention(12, 3, w), seed=5).double().eval()
    x = torch.randn(4, w * w, 12, dtype=torch.float64)
    got = attn(x)
    want = torch.stack([_naive_attention(attn, x[i], w) for i in range(4)])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@torch.no_grad()
def test_consistent_head_permutation_leaves_output_unchanged():
    # Holds only if qkv rows are grouped per head as [q, k, v] (3*head_dim rows per head).
    dim, heads, w = 12, 3, 3
    d = dim // heads
    attn = _randomize(Attention(dim, heads, w), seed=6).double().eval()
    x = torch.randn(2, w * w, dim, dtype=torch.float64)
    perm = [2, 0, 1]
    moved = _randomize(Attention(dim, heads, w), seed=7).double().eval()
    moved.load_state_dict(attn.state_dict())
    rows = torch.cat([torch.arange(3 * d * h, 3 * d * (h + 1)) for h in perm])
    cols = torch.cat([torch.arange(d * h, d * (h + 1)) for h in perm])
    moved.qkv.weight.copy_(attn.qkv.weight[rows])
    moved.qkv.bias.copy_(attn.qkv.bias[rows])
    moved.proj.weight.copy_(attn.proj.weight[:, cols])
    moved.attention_biases.copy_(attn.attention_biases[perm])
    torch.testing.assert_close(moved(x), attn(x), rtol=1e-10, atol=1e-10)
    # whereas SAM-style [all q | all k | all v] row blocks would give a different result
    blocked = torch.cat(
        [torch.arange(p * dim + h * d, p * dim + (h + 1) * d) for h in perm for p in range(3)]
    )
    moved.qkv.weight.copy_(attn.qkv.weight[blocked])
    moved.qkv.bias.copy_(attn.qkv.bias[blocked])
    assert not torch.allclose(moved(x), attn(x))


@torch.no_grad()
def test_block_matches_naive_with_padding():
    dim, heads, w, height, width = 8, 2, 3, 5, 7  # pads 1 row and 2 columns
    block = _randomize(TinyViTBlock(dim, heads, w, 2.0, 3), seed=8).double().eval()
    x = torch.randn(2, height, width, dim, dtype=torch.float64)
    torch.testing.assert_close(block(x), _naive_block(block, x), rtol=1e-9, atol=1e-9)


@torch.no_grad()
def test_round_trip_state_dict_strict(tiny_vit_encoder, small_input):
    fresh = TinyViT(img_size=256)
    fresh.load_state_dict(tiny_vit_encoder.state_dict(), strict=True)
    fresh.eval()
    assert torch.equal(fresh(small_input), tiny_vit_encoder(small_input))


@torch.no_grad()
def test_unused_head_does_not_affect_output(tiny_vit_encoder, small_input):
    model = TinyViT(img_size=256)
    model.load_state_dict(tiny_vit_encoder.state_dict())
    model.eval()
    before = model(small_input)
    model.head.weight.add_(1.0)
    model.norm_head.bias.add_(1.0)
    assert torch.equal(model(small_input), before)
    assert not any(k.startswith("head.") for k in TinyViT(num_classes=0).state_dict())


@torch.no_grad()
def test_changed_attention_biases_are_used_in_eval(tiny_vit_encoder, small_input):
    # MobileSAM caches the gathered bias at .eval() time; loading afterwards leaves it stale.
    model = TinyViT(img_size=256).eval()
    model.load_state_dict(tiny_vit_encoder.state_dict())
    before = model(small_input)
    sd = model.state_dict()
    for k in sd:
        if k.endswith("attention_biases"):
            sd[k] = sd[k] + torch.randn(sd[k].shape)
    model.load_state_dict(sd)  # still in eval mode; no .eval() call afterwards
    after = model(small_input)
    assert not torch.allclose(before, after)
    reference = TinyViT(img_size=256)
    reference.load_state_dict(sd)
    assert torch.equal(reference.eval()(small_input), after)
    # a direct in-place edit of the tensor data is seen too
    model.layers[3].blocks[1].attn.attention_biases.data.mul_(-1.0)
    assert not torch.allclose(model(small_input), after)
    model.train().eval()
    assert not torch.allclose(model(small_input), after)


@torch.no_grad()
def test_eval_uses_running_stats(tiny_vit_encoder, small_input):
    stats = {k: v.clone() for k, v in tiny_vit_encoder.state_dict().items() if "bn." in k}
    batch = tiny_vit_encoder(small_input)
    single = tiny_vit_encoder(small_input[1:])
    torch.testing.assert_close(single, batch[1:], rtol=1e-4, atol=1e-4)
    for k, v in tiny_vit_encoder.state_dict().items():
        if "bn." in k:
            assert torch.equal(v, stats[k]), k


def test_train_mode_autograd():
    model = _randomize(TinyViT(img_size=256), seed=9).train()
    x = torch.randn(2, 3, 256, 256)
    y = model(x)
    assert y.shape == (2, 256, 16, 16)
    (y * torch.randn_like(y)).sum().backward()
    for name, p in model.named_parameters():
        if name.startswith(("head.", "norm_head.")):
            assert p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.layers[2].blocks[0].attn.attention_biases.grad.abs().sum() > 0
    assert int(model.patch_embed.seq[0].bn.num_batches_tracked) == 1


@pytest.mark.parametrize("img_size", [64, 224])  # 64: every stage padded; 224: no padding
@torch.no_grad()
def test_encoder_matches_naive_forward(img_size):
    model = _randomize(TinyViT(img_size=img_size), seed=11).double().eval()
    x = torch.randn(2, 3, img_size, img_size, dtype=torch.float64)
    torch.testing.assert_close(model(x), _naive_encoder(model, x), rtol=1e-9, atol=1e-9)
