"""Settings of automatic segmentation."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from napari_segany.automatic.point_grid import PointGridParams

METHODS = ("auto", "instance_head", "point_grid")
#: Numbers of views whose instance-head maps can be averaged (see ``AutomaticParams.views``).
VIEWS = (1, 4, 8)


@dataclass(frozen=True)
class AutomaticParams:
    """How to find every object.

    Attributes
    ----------
    method : {"auto", "instance_head", "point_grid"}
        ``"instance_head"``: foreground and centre maps from the model's instance head, then a
        seeded watershed (one decoder-free pass per tile; only models trained with a head, such
        as the embedded ``segany_cells``). ``"point_grid"``: SAM's grid of point prompts (every
        model). ``"auto"`` takes the instance head when the model has one.
    min_size : int
        Objects with fewer pixels are dropped.
    fill_holes : bool
        Fill holes enclosed by one object.
    foreground_threshold, seed_threshold : float
        Instance-head method: foreground probability above which a pixel is inside an object,
        and centre value above which pixels seed an object.
    centre_sigma : float
        Instance-head method: Gaussian smoothing of the centre map (pixels) before seeding.
    split_solidity : float
        Instance-head method: objects whose solidity (area ÷ convex hull area) is below this
        are split along their necks, e.g. two touching nuclei seeded as one (0: never).
    views : {1, 4, 8}
        Instance-head method: the maps are averaged over this many views of each tile, each
        encoded on its own: 1 the tile as it is, 4 with its up-down, left-right and both flips,
        8 with the same four of its transpose. More views cost more encodings and smooth out
        the model's mistakes (see the README for measured accuracy).
    point_grid : PointGridParams
        Point-grid method settings.
    """

    method: str = "auto"
    min_size: int = 10
    fill_holes: bool = True
    # chosen on validation images (benchmarks/tune_automatic.py), not on the evaluation images
    foreground_threshold: float = 0.5
    seed_threshold: float = 0.5
    centre_sigma: float = 1.0
    split_solidity: float = 0.95
    views: int = 4
    point_grid: PointGridParams = field(default_factory=PointGridParams)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.min_size < 0:
            raise ValueError(f"min_size must be ≥ 0, got {self.min_size}")
        for name in ("foreground_threshold", "seed_threshold"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.centre_sigma < 0:
            raise ValueError(f"centre_sigma must be ≥ 0, got {self.centre_sigma}")
        if not 0 <= self.split_solidity <= 1:
            raise ValueError(f"split_solidity must be between 0 and 1, got {self.split_solidity}")
        if self.views not in VIEWS:
            raise ValueError(f"views must be one of {VIEWS}, got {self.views!r}")

    @classmethod
    def from_options(cls, **options) -> AutomaticParams:
        """Build from flat keyword options, e.g. ``points_per_side=16, min_size=20``.

        Unknown names raise a ValueError listing the valid ones.
        """
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
