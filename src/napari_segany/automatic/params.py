"""Settings of automatic segmentation."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields

from napari_segany.automatic.point_grid import PointGridParams
from napari_segany.inference.instance_labels import FLIPS, InstanceSeeding

__all__ = ["FLIPS", "METHODS", "AutomaticParams"]

METHODS = ("auto", "instance_head", "point_grid")
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
    method : {"auto", "instance_head", "point_grid"}
        ``"instance_head"``: foreground, centre and boundary maps from the model's instance head,
        then a seeded watershed (one decoder-free pass per tile; only models trained with a
        head, such as the embedded ``segany_cells``). ``"point_grid"``: SAM's grid of point
        prompts (every model). ``"auto"`` takes the instance head when the model has one.
    point_grid : PointGridParams
        Point-grid method settings.
    min_confidence : float
        Objects whose ``confidence`` is below this are left out (0: keep every object). The
        default was chosen on validation images (docs/history.md): the instance head's least
        confident objects are mostly false objects and fragments.
    """

    method: str = "auto"
    point_grid: PointGridParams = field(default_factory=PointGridParams)
    min_confidence: float = 0.3

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not 0 <= self.min_confidence < 1:
            raise ValueError(f"min_confidence must be ≥ 0 and below 1, got {self.min_confidence}")
        super().__post_init__()

    @classmethod
    def from_options(cls, **options) -> AutomaticParams:
        """Build from flat keyword options, e.g. ``points_per_side=16, min_size=20``.

        Unknown names raise a ValueError listing the valid ones.
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
        own = {f.name for f in fields(cls)} - {"point_grid"}
        grid = {f.name for f in fields(PointGridParams)}
        unknown = set(options) - own - grid
        if unknown:
            raise ValueError(
                f"unknown automatic segmentation option(s) {sorted(unknown)}; "
                f"valid: {sorted(own | grid)}"
            )
        grid_options = {k: v for k, v in options.items() if k in grid}
        return cls(
            **{k: v for k, v in options.items() if k in own},
            point_grid=PointGridParams(**grid_options),
        )

    def resolve_method(self, model) -> str:
        """The method actually used with ``model`` (``"auto"`` resolved)."""
        has_head = getattr(model, "has_instance_head", False)
        if self.method == "auto":
            return "instance_head" if has_head else "point_grid"
        if self.method == "instance_head" and not has_head:
            raise ValueError(
                f"the {model.architecture} model has no instance head; use method='point_grid' "
                "(or 'auto')"
            )
        return self.method
