"""How an instance-segmentation decoder's maps become objects: the settings a decoder file
recommends.

Import-light (no torch): the model registry names each published decoder's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class DecoderSettings:
    """Post-processing of a micro-sam decoder's foreground, centre-distance and boundary-distance
    maps (a seeded watershed; see :mod:`napari_segany.inference.decoder_maps`).

    The defaults are those of micro-sam's ``InstanceSegmentationWithDecoder.generate``; the
    registry gives each published decoder the settings micro-sam's annotator uses for it.

    Attributes
    ----------
    center_distance_threshold, boundary_distance_threshold : float
        Seeds are the connected regions where both smoothed distance maps are below these
        (near an object's centre and away from its border).
    foreground_threshold : float
        Pixels whose smoothed foreground probability is above this belong to an object.
    foreground_smoothing, distance_smoothing : float
        Gaussian sigma, in pixels, applied to the foreground and to both distance maps (0: none).
    min_size : int
        Objects with fewer pixels are dropped.
    """

    center_distance_threshold: float = 0.5
    boundary_distance_threshold: float = 0.5
    foreground_threshold: float = 0.5
    foreground_smoothing: float = 1.0
    distance_smoothing: float = 1.6
    min_size: int = 0

    def __post_init__(self) -> None:
        for name in ("center_distance_threshold", "boundary_distance_threshold"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be above 0 and at most 1, got {value}")
        if not 0 <= self.foreground_threshold < 1:
            raise ValueError(
                f"foreground_threshold must be ≥ 0 and below 1, got {self.foreground_threshold}"
            )
        for name in ("foreground_smoothing", "distance_smoothing"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.min_size < 0:
            raise ValueError(f"min_size must be ≥ 0, got {self.min_size}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The setting names, in order."""
        return tuple(f.name for f in fields(cls))
