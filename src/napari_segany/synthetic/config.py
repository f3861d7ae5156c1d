"""Parameter ranges for synthetic scenes, and drawing one scene's parameters from them.

:class:`SceneConfig` holds RANGES; :func:`sample_config` draws one :class:`SceneParams` (plain
numbers) from them. Per-object values (each nucleus's size, brightness, blur...) are drawn later,
inside :func:`~napari_segany.synthetic.generate_scene`, around the scene's values.

Held-out scenes
---------------
``sample_config(rng, held_out=True)`` and ``generate_scene(..., held_out=True)`` differ from
training in exactly two ways:

1. Parameter bands. The ranges of the four parameters in :data:`BANDED` (``radius_mean``,
   ``psf_sigma``, ``photons``, ``background_level``) are each cut into ``SceneConfig.n_bands``
   (default 9) equal bands, on a log scale for ``radius_mean`` and ``photons``. Training scenes
   draw each of these four from the even bands (0, 2, ..., 8: both ends of every range are
   trained on), held-out scenes from the odd bands (1, 3, 5, 7). So every held-out scene lies
   outside the support of the training sampler in all four coordinates at once
   (:func:`band_index` tells which band a value is in). All other parameters share their ranges.
2. Seed stream. ``generate_scene`` seeds ``np.random.SeedSequence(seed, spawn_key=(stream,))``
   with stream 0 for training and 1 for held-out, so the same integer seed never gives the same
   random numbers (object placement, texture, noise) in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODALITIES = ("nuclei", "cytoplasm", "brightfield", "phase")
"""Scene kinds: fluorescent nuclei, cytoplasm-stained cells, brightfield and phase contrast."""

FLUORESCENCE = ("nuclei", "cytoplasm")
"""Modalities whose objects are brighter than the background (before any inversion)."""

BIT_DEPTHS = (8, 12, 16)
"""8 bits in uint8; 12 and 16 bits in uint16."""

BANDED = ("radius_mean", "psf_sigma", "photons", "background_level")
"""Parameters whose ranges are split into training (even) and held-out (odd) bands."""

_LOG_BANDED = ("radius_mean", "photons")

Range = tuple[float, float]


@dataclass(frozen=True)
class SceneConfig:
    """Ranges from which scene parameters are drawn.

    Each ``(low, high)`` range is sampled uniformly unless noted "log" (log-uniform). Intensities
    are in units of the float image, 0 = black, 1 = full scale of the bit depth. Lengths are in
    pixels; radii are equivalent radii ``sqrt(a * b)`` of the drawn shape, before blur.
    """

    modality_weights: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2)  # in MODALITIES order
    # layout
    radius_mean: Range = (5.0, 60.0)  # log; banded
    radius_spread: Range = (0.03, 0.35)  # log-sd of object radii around radius_mean
    radius_limits: Range = (3.5, 80.0)  # every object radius is clipped to this
    aspect_max: Range = (1.05, 2.2)  # each object's axis ratio is uniform in [1, aspect_max]
    nucleus_irregularity: Range = (0.0, 0.1)  # amplitude of boundary harmonics
    cell_irregularity: Range = (0.15, 0.45)  # cytoplasm-stained cells
    transmitted_irregularity: Range = (0.03, 0.25)  # brightfield and phase cells
    coverage: Range = (0.03, 0.6)  # expected fraction of the field covered by objects
    max_density: float = 4000.0  # objects per megapixel at most (caps dense small-object fields)
    # objects drawn per object wanted; a placement that overlaps too much is skipped, so dense
    # clustered fields need more tries to reach their coverage
    placement_tries: float = 1.5
    p_touching: float = 0.5  # touching layout (shared borders) rather than overlapping
    max_overlap: Range = (0.02, 0.3)  # overlap allowed as a fraction of either object
    clustering: Range = (0.0, 0.8)  # probability a new object is placed against an old one
    # object amplitude = contrast_to_noise * noise std at the background level (fluorescence:
    # peak before blur; transmitted light: rim after blur); log
    contrast_to_noise: Range = (2.0, 40.0)
    brightness_spread: Range = (0.03, 0.6)  # log-sd of amplitudes: "same brightness" to varied
    # fluorescence appearance
    brightness_limits: Range = (0.02, 0.9)  # fluorescence amplitude is clipped to this
    profile_gamma: Range = (0.05, 0.5)  # intensity ~ (1 - rho^2)^gamma: flat (0) to dome (0.5)
    texture: Range = (0.05, 0.35)  # chromatin / granule texture amplitude (relative)
    texture_scale: Range = (0.7, 2.5)  # texture correlation length
    nucleoli: tuple[int, int] = (0, 4)  # max nucleoli / holes per nucleus
    nucleolus_contrast: Range = (-0.6, 0.6)  # relative; negative = holes / dark nucleoli
    mitotic_fraction: Range = (0.0, 0.08)  # nuclei drawn as bright compact mitotic figures
    nucleus_factor_dark: Range = (0.25, 0.75)  # cytoplasm: nucleus region darker than the cell
    nucleus_factor_bright: Range = (1.3, 2.0)  # ... or brighter
    p_bright_nucleus: float = 0.4
    # transmitted light (brightfield, phase) appearance
    rim_limits: Range = (0.01, 0.35)  # absolute rim amplitude is clipped to this
    rim_width: Range = (0.6, 1.5)  # brightfield
    phase_rim_width: Range = (1.0, 2.5)
    halo_ratio: Range = (0.0, 0.6)  # brightfield: halo amplitude / rim amplitude, opposite sign
    phase_halo_ratio: Range = (0.3, 1.0)  # phase: bright halo / dark rim
    halo_width: Range = (1.0, 2.5)
    interior_ratio: Range = (-0.3, 0.3)  # brightfield: interior offset / rim amplitude
    phase_interior_ratio: Range = (0.5, 1.0)  # phase: dark body / rim amplitude
    # optics and background
    psf_sigma: Range = (0.6, 2.6)  # banded
    defocus_fraction: Range = (0.0, 0.3)  # share of objects blurred extra (still labelled)
    defocus_sigma: Range = (0.5, 2.5)
    fluorescence_background: Range = (0.005, 0.25)  # banded as background_level
    transmitted_background: Range = (0.3, 0.75)  # banded as background_level
    background_variation: Range = (0.0, 0.35)  # relative blotchiness (a fifth in transmitted)
    illumination_gradient: Range = (0.0, 0.35)  # relative change across the field
    vignetting: Range = (0.0, 0.4)  # relative darkening at the corners
    debris_density: Range = (0.0, 12.0)  # expected debris items per 256x256
    # camera
    fluorescence_photons: Range = (20.0, 3000.0)  # log; photons at intensity 1; banded
    transmitted_photons: Range = (300.0, 20000.0)  # log; banded as photons
    read_noise: Range = (0.001, 0.02)  # Gaussian noise std
    bit_depth_weights: tuple[float, ...] = (0.3, 0.35, 0.35)  # in BIT_DEPTHS order
    p_inverted: float = 0.08  # probability of an inverted-contrast image
    # visibility of labelled objects
    min_area: int = 12  # pixels inside the image
    min_contrast: float = 0.008  # mean |signal| over the label (its edge for brightfield)
    min_snr: float = 1.0  # and at least this many background noise standard deviations
    n_bands: int = 9  # bands for held-out splitting (odd, so training keeps both ends)


@dataclass(frozen=True)
class SceneParams:
    """The parameters of one scene (plain numbers, drawn by :func:`sample_config`).

    Defaults describe a plain, moderately dense 12-bit fluorescent-nuclei scene, so tests and
    :func:`~napari_segany.synthetic.generate_nuclei` can override only what they need. The
    fluorescence-appearance fields are ignored in brightfield and phase scenes, the transmitted
    ones in nuclei and cytoplasm scenes. Units as in :class:`SceneConfig`.
    """

    modality: str = "nuclei"
    held_out: bool = False
    # layout
    radius_mean: float = 12.0
    radius_spread: float = 0.2
    radius_limits: Range = (3.5, 80.0)
    aspect_max: float = 1.5
    irregularity: float = 0.05
    coverage: float = 0.25
    n_objects: int | None = None  # objects to place; None: from coverage and radius_mean
    max_density: float = 4000.0  # objects per megapixel at most
    placement_tries: float = 1.5  # objects drawn per object wanted
    touching: bool = False
    max_overlap: float = 0.05
    clustering: float = 0.0
    # fluorescence appearance
    contrast_to_noise: float = 10.0  # as drawn; brightness or rim were derived from it
    brightness: float = 0.4  # mean peak amplitude of fluorescent objects
    brightness_spread: float = 0.3
    profile_gamma: float = 0.3
    texture: float = 0.2
    texture_scale: float = 1.5
    nucleoli: int = 2
    nucleolus_contrast: float = -0.3
    mitotic_fraction: float = 0.0
    nucleus_factor: float = 0.6  # cytoplasm scenes: intensity of the nucleus region
    # transmitted appearance
    rim: float = -0.15  # signed: negative = dark rim
    rim_width: float = 1.0
    halo: float = 0.1  # signed
    halo_width: float = 2.0
    interior: float = -0.02  # signed offset of the cell body
    # optics and background
    psf_sigma: float = 1.2
    defocus_fraction: float = 0.0
    defocus_sigma: float = 1.5
    background_level: float = 0.08
    background_variation: float = 0.1
    illumination_gradient: float = 0.1
    vignetting: float = 0.1
    debris_density: float = 0.0
    # camera
    photons: float = 800.0
    read_noise: float = 0.005
    bit_depth: int = 12
    inverted: bool = False
    # visibility
    min_area: int = 12
    min_contrast: float = 0.008
    min_snr: float = 1.0

    @property
    def fluorescence(self) -> bool:
        """True for modalities whose objects emit light (nuclei, cytoplasm)."""
        return self.modality in FLUORESCENCE


def band_index(value: float, bounds: Range, n_bands: int, log: bool = False) -> int:
    """Which of ``n_bands`` equal bands of ``bounds`` holds ``value`` (0-based, clipped).

    Parameters
    ----------
    value : float
    bounds : (float, float)
        (low, high) of the full range.
    n_bands : int
    log : bool
        Bands of equal width in log space.
    """
    low, high = (math.log(b) for b in bounds) if log else bounds
    x = math.log(value) if log else value
    return min(n_bands - 1, max(0, int((x - low) / (high - low) * n_bands)))


def banded_bounds(config: SceneConfig, name: str, modality: str) -> tuple[Range, bool]:
    """The full range of a :data:`BANDED` parameter for a modality, and whether it is log-scaled."""
    if name == "background_level":
        bounds = (
            config.fluorescence_background
            if modality in FLUORESCENCE
            else config.transmitted_background
        )
    elif name == "photons":
        bounds = (
            config.fluorescence_photons if modality in FLUORESCENCE else config.transmitted_photons
        )
    else:
        bounds = getattr(config, name)
    return bounds, name in _LOG_BANDED


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(*bounds))


def _log_uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _banded(
    rng: np.random.Generator, bounds: Range, n_bands: int, held_out: bool, log: bool
) -> float:
    """Uniform (or log-uniform) within a random training (even) or held-out (odd) band."""
    allowed = np.arange(1 if held_out else 0, n_bands, 2)
    band = int(rng.choice(allowed))
    low, high = np.log(bounds) if log else np.asarray(bounds, dtype=np.float64)
    width = (high - low) / n_bands
    # stay 1% away from band edges so rounding cannot move a value into a neighbour band
    x = low + (band + rng.uniform(0.01, 0.99)) * width
    return float(np.exp(x) if log else x)


def _choice(rng: np.random.Generator, options: tuple, weights: tuple[float, ...]):
    p = np.asarray(weights, dtype=np.float64)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _transmitted_appearance(
    rng: np.random.Generator, config: SceneConfig, modality: str, visible: float, psf: float
) -> dict:
    """Rim, halo and interior of brightfield (rim of either sign) or phase (dark rim) cells.

    ``visible`` is the rim amplitude wanted after blur: the drawn rim is stronger by the factor
    a Gaussian ring of its width loses under the optics' blur ``psf``.
    """
    phase = modality == "phase"
    width = _uniform(rng, config.phase_rim_width if phase else config.rim_width)
    amplitude = float(np.clip(visible * math.hypot(width, psf) / width, *config.rim_limits))
    if phase:
        # phase contrast: dark rim and body, bright halo outside
        rim = -amplitude
        halo = amplitude * _uniform(rng, config.phase_halo_ratio)
        interior = rim * _uniform(rng, config.phase_interior_ratio)
    else:
        # brightfield: dark rim, or bright rim when focused the other side of the cells
        rim = amplitude if rng.random() < 0.35 else -amplitude
        halo = -rim * _uniform(rng, config.halo_ratio)
        interior = rim * _uniform(rng, config.interior_ratio)
    return {
        "rim": rim,
        "rim_width": width,
        "halo": halo,
        "halo_width": _uniform(rng, config.halo_width),
        "interior": interior,
    }


def _noise_std(level: float, photons: float, read_noise: float) -> float:
    """Camera noise std at an intensity: shot noise plus read noise."""
    return math.sqrt(level / photons + read_noise**2)


def sample_config(
    rng: np.random.Generator, held_out: bool = False, config: SceneConfig | None = None
) -> SceneParams:
    """Draw one scene's parameters.

    Parameters
    ----------
    rng : numpy.random.Generator
    held_out : bool
        Draw the :data:`BANDED` parameters from the held-out (odd) bands instead of the training
        (even) bands; see the module documentation.
    config : SceneConfig, optional
        The ranges; default ``SceneConfig()``.

    Returns
    -------
    SceneParams
    """
    config = config or SceneConfig()
    modality = _choice(rng, MODALITIES, config.modality_weights)
    banded = {}
    for name in BANDED:
        bounds, log = banded_bounds(config, name, modality)
        banded[name] = _banded(rng, bounds, config.n_bands, held_out, log)
    irregularity = {
        "nuclei": config.nucleus_irregularity,
        "cytoplasm": config.cell_irregularity,
    }.get(modality, config.transmitted_irregularity)
    bright_nucleus = rng.random() < config.p_bright_nucleus
    read_noise = _uniform(rng, config.read_noise)
    cnr = _log_uniform(rng, config.contrast_to_noise)
    amplitude = cnr * _noise_std(banded["background_level"], banded["photons"], read_noise)
    values = {
        "modality": modality,
        "contrast_to_noise": cnr,
        "read_noise": read_noise,
        "held_out": held_out,
        **banded,
        "radius_spread": _uniform(rng, config.radius_spread),
        "radius_limits": config.radius_limits,
        "aspect_max": _uniform(rng, config.aspect_max),
        "irregularity": _uniform(rng, irregularity),
        "coverage": _uniform(rng, config.coverage),
        "max_density": config.max_density,
        "placement_tries": config.placement_tries,
        "touching": bool(rng.random() < config.p_touching),
        "max_overlap": _uniform(rng, config.max_overlap),
        "clustering": _uniform(rng, config.clustering),
        "brightness_spread": _uniform(rng, config.brightness_spread),
        "profile_gamma": _uniform(rng, config.profile_gamma),
        "texture": _uniform(rng, config.texture),
        "texture_scale": _uniform(rng, config.texture_scale),
        "nucleoli": int(rng.integers(config.nucleoli[0], config.nucleoli[1] + 1)),
        "nucleolus_contrast": _uniform(rng, config.nucleolus_contrast),
        "mitotic_fraction": _uniform(rng, config.mitotic_fraction),
        "nucleus_factor": _uniform(
            rng, config.nucleus_factor_bright if bright_nucleus else config.nucleus_factor_dark
        ),
        "defocus_fraction": _uniform(rng, config.defocus_fraction),
        "defocus_sigma": _uniform(rng, config.defocus_sigma),
        "background_variation": _uniform(rng, config.background_variation),
        "illumination_gradient": _uniform(rng, config.illumination_gradient),
        "vignetting": _uniform(rng, config.vignetting),
        "debris_density": _uniform(rng, config.debris_density),
        "bit_depth": _choice(rng, BIT_DEPTHS, config.bit_depth_weights),
        "inverted": bool(rng.random() < config.p_inverted),
        "min_area": config.min_area,
        "min_contrast": config.min_contrast,
        "min_snr": config.min_snr,
    }
    if modality in FLUORESCENCE:
        values["brightness"] = float(np.clip(amplitude, *config.brightness_limits))
    else:
        psf = banded["psf_sigma"]
        values.update(_transmitted_appearance(rng, config, modality, amplitude, psf))
        values["touching"] = False  # transmitted-light cells overlap; both rims stay visible
    return SceneParams(**values)
