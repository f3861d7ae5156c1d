"""The promptable segmentation model: an image encoder, a prompt encoder and a mask decoder."""

from __future__ import annotations

import torch
from torch import nn

from napari_segany.models.inference_settings import InferenceSettings
from napari_segany.models.two_way_transformer import ImageContext

# SAM's pixel statistics on the 0–255 scale (RGB). Not stored in checkpoints.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class SamModel(nn.Module):
    """Segment Anything model: image → embedding once, then prompts → masks cheaply.

    The state-dict keys are those of the published checkpoints: ``image_encoder.*``,
    ``prompt_encoder.*`` and ``mask_decoder.*``.

    Parameters
    ----------
    image_encoder : nn.Module
        Maps (B, 3, S, S) normalised input to a (B, 256, S/16, S/16) embedding; has ``img_size``.
    prompt_encoder : PromptEncoder
    mask_decoder : MaskDecoder
    architecture : str
        Name of the architecture this model was built as (``"vit_b"``, ``"vit_t"``, ...).
    pixel_mean, pixel_std : tuple of float
        Per-channel normalisation of the 0–255 RGB input.
    upscale_input : bool
        Scale images smaller than the input up to it (SAM's convention, True), or keep them at
        their pixel size and only pad (models trained at the pixel size of microscopy data).
    instance_head : nn.Module, optional
        Dense foreground/centre head (:class:`~napari_segany.models.instance_head.InstanceHead`)
        of models trained with one; its keys are ``instance_head.*``.
    decoder_window : int, optional
        Side, in tokens, of the embedding window around the prompts that predictors decode on
        (None: the whole embedding). See :meth:`decode`'s ``window``.
    inference : InferenceSettings, optional
        How predictors and sessions use this model (default: SAM's).

    Attributes
    ----------
    instance_decoder : InstanceDecoder or None
        micro-sam's instance-segmentation decoder, when one was attached
        (:func:`~napari_segany.models.decoder_checkpoint.attach_decoder`); its keys are
        ``instance_decoder.*``.
    """

    mask_threshold: float = 0.0

    def __init__(
        self,
        image_encoder: nn.Module,
        prompt_encoder: nn.Module,
        mask_decoder: nn.Module,
        architecture: str,
        pixel_mean: tuple[float, float, float] = PIXEL_MEAN,
        pixel_std: tuple[float, float, float] = PIXEL_STD,
        upscale_input: bool = True,
        instance_head: nn.Module | None = None,
        decoder_window: int | None = None,
        inference: InferenceSettings | None = None,
    ) -> None:
        super().__init__()
        self.inference = inference if inference is not None else InferenceSettings()
        self.decoder_window = decoder_window
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.instance_head = instance_head
        self.instance_decoder: nn.Module | None = None
        self.architecture = architecture
        self.upscale_input = upscale_input
        self._pixel_stats = (tuple(pixel_mean), tuple(pixel_std))
        self.register_buffer("pixel_mean", torch.empty(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.empty(3, 1, 1), persistent=False)
        self.rebuild_non_persistent_buffers()
        self._dense_pe: torch.Tensor | None = None

    def rebuild_non_persistent_buffers(self) -> None:
        """(Re)create the buffers that checkpoints do not store (after building on 'meta')."""
        device = None if self.pixel_mean.is_meta else self.pixel_mean.device
        mean, std = self._pixel_stats
        self.pixel_mean = torch.tensor(mean, device=device).view(-1, 1, 1)
        self.pixel_std = torch.tensor(std, device=device).view(-1, 1, 1)

    @property
    def image_size(self) -> int:
        """Side of the square model input (1024 for SAM)."""
        return int(self.image_encoder.img_size)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def _apply(self, fn, recurse=True):
        self._dense_pe = None  # cached on the old device/dtype
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True):
        self._dense_pe = None
        return super().train(mode)

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the embedding grid, (1, 256, h, w); cached in eval mode."""
        if self.training or torch.is_grad_enabled():
            return self.prompt_encoder.get_dense_pe()
        if self._dense_pe is None:
            self._dense_pe = self.prompt_encoder.get_dense_pe()
        return self._dense_pe

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._dense_pe = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def normalize(self, image: torch.Tensor, side: int | None = None) -> torch.Tensor:
        """(B, 3, h, w) 0–255 RGB → normalised and zero-padded (B, 3, S, S) at the bottom/right.

        ``side`` is the padded size S (default: the model input size); the one place where pixel
        statistics are applied.
        """
        image = (image - self.pixel_mean) / self.pixel_std
        h, w = image.shape[-2:]
        side = self.image_size if side is None else side
        pad = (0, side - w, 0, side - h)
        return nn.functional.pad(image, pad)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Embed a normalised, padded batch (B, 3, S, S) → (B, 256, S/16, S/16)."""
        return self.image_encoder(image)

    @property
    def has_instance_head(self) -> bool:
        """Whether the model predicts instance maps (see :meth:`instance_maps`)."""
        return self.instance_head is not None

    def instance_maps(self, embedding: torch.Tensor) -> torch.Tensor:
        """Foreground, centre and boundary logits, (B, 3, 4h, 4w), from an embedding
        (B, 256, h, w); see :class:`~napari_segany.models.instance_head.InstanceHead`.

        Raises
        ------
        ValueError
            If the model has no instance head.
        """
        if self.instance_head is None:
            raise ValueError(
                f"the {self.architecture} model has no instance head; use the point-grid method"
            )
        return self.instance_head(embedding)

    @property
    def has_instance_decoder(self) -> bool:
        """Whether a micro-sam instance-segmentation decoder is attached (see
        :meth:`instance_decoder_maps`)."""
        return self.instance_decoder is not None

    def instance_decoder_maps(self, embedding: torch.Tensor) -> torch.Tensor:
        """Foreground, centre-distance and boundary-distance probabilities, (B, 3, 16h, 16w)
        over the padded model input, from an embedding (B, 256, h, w); see
        :class:`~napari_segany.models.unetr_decoder.InstanceDecoder`.

        Raises
        ------
        ValueError
            If no instance decoder is attached.
        """
        if self.instance_decoder is None:
            raise ValueError(
                f"the {self.architecture} model has no instance decoder; load one with "
                "load_model(checkpoint, decoder=...)"
            )
        return self.instance_decoder(embedding)

    def prepare_decoder(self, embedding: torch.Tensor) -> ImageContext | None:
        """Prompt-independent decoder state for one image embedding (1, 256, h, w).

        Pass it to :meth:`decode` as ``context`` to skip recomputing it for every prompt. It
        applies to prompts without ``mask_input``. None for prompt encoders whose dense embedding
        depends on the prompts.
        """
        if self.prompt_encoder.dense_depends_on_prompts:
            return None  # the image side changes with every prompt: nothing to precompute
        h, w = embedding.shape[-2:]
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, h, w)
        return self.mask_decoder.prepare(embedding, self.dense_pe(), no_mask)

    def decode(
        self,
        embedding: torch.Tensor,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
        context: ImageContext | None = None,
        window: tuple[int, int, int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode prompts on one image embedding.

        Parameters
        ----------
        embedding : Tensor, shape (1, 256, h, w)
        points : Tensor, shape (B, N, 2), optional
            (x, y) in the resized input frame.
        labels : Tensor, shape (B, N), optional
            1 foreground, 0 background.
        boxes : Tensor, shape (B, 4), optional
            (x0, y0, x1, y1) in the resized input frame.
        mask_input : Tensor, shape (B, 1, 4h, 4w), optional
            Low-resolution logits of a previous prediction.
        multimask : bool
            Three candidates (True) or one mask (False).
        context : ImageContext, optional
            :meth:`prepare_decoder` of ``embedding``; used when there is no ``mask_input`` and
            no ``window``.
        window : (int, int, int, int), optional
            (row0, col0, rows, cols) of a window of the embedding grid, in tokens: the decoder
            attends only to it (as a model trained on crops did). Prompts stay in the input
            frame; ``mask_input`` covers the whole grid and is cropped here.

        Returns
        -------
        low_res_logits : Tensor, shape (B, K, 4h, 4w), or (B, K, 4·rows, 4·cols) with a window
        iou_predictions : Tensor, shape (B, K)
        """
        if window is not None:
            r0, c0, rows, cols = window
            grid = embedding.shape[-2:]
            if (
                rows < 1
                or cols < 1
                or r0 < 0
                or c0 < 0
                or r0 + rows > grid[0]
                or c0 + cols > grid[1]
            ):
                raise ValueError(f"window {window} is not inside the {tuple(grid)} embedding grid")
            tokens = (slice(None), slice(None), slice(r0, r0 + rows), slice(c0, c0 + cols))
            pixels = (
                slice(None),
                slice(None),
                slice(4 * r0, 4 * (r0 + rows)),
                slice(4 * c0, 4 * (c0 + cols)),
            )
            batch = next((t.shape[0] for t in (points, boxes, mask_input) if t is not None), 1)
            stride = self.image_size / grid[1]
            origin = embedding.new_tensor([stride * c0, stride * r0]).expand(batch, 2)
            sparse, dense = self.prompt_encoder(
                (points, labels) if points is not None else None,
                boxes,
                mask_input[pixels] if mask_input is not None else None,
                (rows, cols),
                origin,
            )
            return self.mask_decoder(
                embedding[tokens], self.dense_pe()[tokens], sparse, dense, multimask
            )
        sparse, dense = self.prompt_encoder(
            points=(points, labels) if points is not None else None, boxes=boxes, masks=mask_input
        )
        if context is not None and mask_input is None:
            return self.mask_decoder(None, None, sparse, None, multimask, context=context)
        return self.mask_decoder(embedding, self.dense_pe(), sparse, dense, multimask)
