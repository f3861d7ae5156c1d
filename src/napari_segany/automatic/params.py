"""Settings of automatic segmentation."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field, fields

from napari_segany.automatic.point_grid import PointGridParams
from napari_segany.inference.instance_labels import FLIPS, InstanceSeeding
from napari_segany.models.decoder_settings import DecoderSettings

__all__ = ["FLIPS", "METHODS", "AutomaticParams", "DecoderSettings"]

METHODS = ("auto", "instance_head", "decoder", "point_grid")
#: Old name of ``flips``, still accepted by :meth:`AutomaticParams.from_options`.
_OLD_NAMES = {"views": "flips"}


@dataclass(frozen=True)
class AutomaticParams(InstanceSeeding):
    """How to find every object.

    The instance-head settings (``min_size``, ``fill_holes``, ``foreground_threshold``,
    ``seed_threshold``, ``centre_sigma``, ``boundary_weight``, ``boundary_threshold``,
    ``split_solidity``, ``peak_prominence``, ``flips``) are those of
    :class:`~napari_segany.inference.instance_labels.InstanceSeeding`; ``min_size`` and
    ``fill_holes`` apply to the point grid too.

    Attributes
    ----------
    method : {"auto", "instance_head", "decoder", "point_grid"}
        ``"instance_head"``: foreground, centre and boundary maps from the model's instance head,
        then a seeded watershed (one decoder-free pass per tile; only models trained with a
        head, such as the embedded ``segany_cells``). ``"decoder"``: micro-sam's
        instance-segmentation decoder and its post-processing (models loaded with a decoder,
        such as ``vit_b_lm``). ``"point_grid"``: SAM's grid of point prompts (every model).
        ``"auto"`` takes a decoder when the model has one, else the instance head, else the point
        grid.
    point_grid : PointGridParams
        Point-grid method settings.
    decoder : DecoderSettings, optional
        Decoder method settings; default (None) those recommended for the model's decoder
        (``model.instance_decoder.settings``).
    decoder_overrides : tuple of (str, value) pairs
        Single decoder settings that replace those of ``decoder`` (or of the recommended
        ones), e.g. ``(("min_size", 50),)``; :meth:`from_options` fills it from flat options.
    min_confidence : float
        Objects whose ``confidence`` is below this are left out (0: keep every object). The
        default was chosen on validation images (docs/history.md): the instance head's least
        confident objects are mostly false objects and fragments.
    """

    method: str = "auto"
    point_grid: PointGridParams = field(default_factory=PointGridParams)
    min_confidence: float = 0.3
    decoder: DecoderSettings | None = None
    decoder_overrides: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not 0 <= self.min_confidence < 1:
            raise ValueError(f"min_confidence must be ≥ 0 and below 1, got {self.min_confidence}")
        unknown = {name for name, _ in self.decoder_overrides} - set(DecoderSettings.names())
        if unknown:
            raise ValueError(
                f"unknown decoder setting(s) {sorted(unknown)}; valid: {DecoderSettings.names()}"
            )
        # check the overridden values now, not when a model with a decoder first uses them
        dataclasses.replace(DecoderSettings(), **dict(self.decoder_overrides))
        super().__post_init__()

    @classmethod
    def from_options(cls, **options) -> AutomaticParams:
        """Build from flat keyword options, e.g. ``points_per_side=16, min_size=20``.

        Options named as :class:`DecoderSettings` fields go to the decoder method (as
        ``decoder_overrides``); ``min_size`` and ``foreground_threshold`` apply to the instance
        head and the decoder alike. Unknown names raise a ValueError listing the valid ones.
        """
        for old, new in _OLD_NAMES.items():
            if old in options:
                warnings.warn(
                    f"the automatic segmentation option {old!r} is now called {new!r}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                if new in options:
                    raise ValueError(f"give {new!r} only, not also its old name {old!r}")
                options[new] = options.pop(old)
        own = {f.name for f in fields(cls)} - {"point_grid", "decoder_overrides"}
        grid = {f.name for f in fields(PointGridParams)}
        decoder = set(DecoderSettings.names())
        unknown = set(options) - own - grid - decoder
        if unknown:
            raise ValueError(
                f"unknown automatic segmentation option(s) {sorted(unknown)}; "
                f"valid: {sorted(own | grid | decoder)}"
            )
        grid_options = {k: v for k, v in options.items() if k in grid}
        return cls(
            **{k: v for k, v in options.items() if k in own},
            point_grid=PointGridParams(**grid_options),
            decoder_overrides=tuple((k, v) for k, v in options.items() if k in decoder),
        )

    def resolve_method(self, model) -> str:
        """The method actually used with ``model`` (``"auto"`` resolved)."""
        has_head = getattr(model, "has_instance_head", False)
        has_decoder = getattr(model, "has_instance_decoder", False)
        if self.method == "auto":
            # a decoder is attached on purpose (micro-sam's models, or a file the user gave), so
            # it wins over an instance head the same model may have
            if has_decoder:
                return "decoder"
            return "instance_head" if has_head else "point_grid"
        if self.method == "instance_head" and not has_head:
            raise ValueError(
                f"the {model.architecture} model has no instance head; use method='point_grid' "
                "(or 'auto')"
            )
        if self.method == "decoder" and not has_decoder:
            raise ValueError(
                f"the {model.architecture} model has no instance-segmentation decoder: load a "
                "micro-sam model that has one (e.g. 'vit_b_lm') or attach a decoder file with "
                "load_model(checkpoint, decoder=...), or use method='point_grid' (or 'auto')"
            )
        return self.method

    def object_min_size(self, model) -> int:
        """The smallest object, in pixels, that the method used with ``model`` keeps (the
        decoder's own ``min_size`` for the decoder method)."""
        if self.resolve_method(model) == "decoder":
            return self.decoder_settings(model).min_size
        return self.min_size

    def decoder_settings(self, model) -> DecoderSettings:
        """The decoder method's settings for ``model``: ``decoder`` (or the model decoder's
        recommended settings) with ``decoder_overrides`` applied."""
        base = self.decoder if self.decoder is not None else model.instance_decoder.settings
        return dataclasses.replace(base, **dict(self.decoder_overrides))
