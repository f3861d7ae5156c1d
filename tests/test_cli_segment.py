"""``napari-segany segment`` options: defaults from the parameter dataclasses, ``--flips``."""

from __future__ import annotations

import pytest

from napari_segany.automatic import AutomaticParams, PointGridParams
from napari_segany.cli import build_parser
from napari_segany.cli.segment import segmentation_params


def parse(*options: str):
    return build_parser().parse_args(["segment", "in.tif", "-o", "out.tif", *options])


def test_options_left_out_take_the_dataclass_defaults():
    assert segmentation_params(parse()) == AutomaticParams()


def test_options_given_reach_the_params():
    params = segmentation_params(parse("--flips", "8", "--min-size", "3"))
    # --min-size applies to the instance head and to a micro-sam decoder alike
    assert params == AutomaticParams(flips=8, min_size=3, decoder_overrides=(("min_size", 3),))
    args = parse("--method", "decoder", "--center-distance-threshold", "0.4")
    assert segmentation_params(args) == AutomaticParams(
        method="decoder", decoder_overrides=(("center_distance_threshold", 0.4),)
    )
    args = parse("--method", "point_grid", "--points-per-side", "8")
    assert segmentation_params(args) == AutomaticParams(
        method="point_grid", point_grid=PointGridParams(points_per_side=8)
    )


def test_help_shows_the_dataclass_defaults_and_hides_views(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {AutomaticParams().flips})" in text
    assert f"(default: {PointGridParams().points_per_side})" in text
    assert "--flips" in text and "--views" not in text


def test_views_is_a_deprecated_alias_of_flips(capsys):
    assert parse("--views", "1").flips == 1
    assert "--views is deprecated, use --flips" in capsys.readouterr().err
    assert parse("--flips", "1").flips == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("option", ["--flips", "--views"])
def test_flips_outside_the_choices_is_a_usage_error(option, capsys):
    with pytest.raises(SystemExit) as stop:
        parse(option, "3")
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
