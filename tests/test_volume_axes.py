"""Axes of stacks: parsing, checking against shapes, and clear errors for ambiguous arrays."""

import numpy as np
import pytest

from napari_segany.volume import AxesError, StackSessions, parse_axes, resolve_axes


@pytest.mark.parametrize(
    ("axes", "expected"),
    [("zyx", "zyx"), ("TYX", "tyx"), ("tczyx", "tczyx"), ("zyxc", "zyxc"), ("YXS", "yxc")],
)
def test_parse_axes_accepts_tzcyx(axes, expected):
    assert parse_axes(axes).axes == expected


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ("zqx", "unknown letter"),
        ("zzyx", "more than once"),
        ("zyt", "must contain y"),
        ("yxz", "last two axes"),
        ("", "letters from"),
    ],
)
def test_parse_axes_rejects_bad_axes(axes, message):
    with pytest.raises(AxesError, match=message):
        parse_axes(axes)


def test_wrong_axes_for_the_array_say_so():
    with pytest.raises(AxesError, match=r"name 3 axes but the image has 4"):
        parse_axes("zyx", (2, 5, 16, 16))


@pytest.mark.parametrize("shape", [(8, 64, 64), (3, 8, 64, 64)])
def test_ambiguous_stack_without_axes_is_a_clear_error(shape):
    with pytest.raises(AxesError) as info:
        resolve_axes(shape)
    text = str(info.value)
    assert "axes=" in text and "--axes" in text and str(shape) in text


def test_unambiguous_and_file_axes():
    assert resolve_axes((64, 64)).axes == "yx"
    assert resolve_axes((64, 64, 3)).axes == "yxc"
    assert resolve_axes((5, 64, 64), file_axes="TYX").axes == "tyx"
    # the user's axes win over the file's
    assert resolve_axes((5, 64, 64), "zyx", file_axes="TYX").axes == "zyx"
    assert parse_axes("tzcyx").plane(t=1, z=4) == (1, 4)


def test_stack_sessions_check_axes(random_cells_model):
    volume = np.zeros((2, 4, 32, 32), np.uint16)
    with pytest.raises(AxesError, match="cannot tell the axes"):
        StackSessions(volume, random_cells_model)
    with pytest.raises(AxesError, match="no z or t axis"):
        StackSessions(volume[0, 0], random_cells_model, "yx")
    with pytest.raises(AxesError, match="no t axis"):
        StackSessions(volume, random_cells_model, "czyx", along="t")
    sessions = StackSessions(volume, random_cells_model, "tzyx", fixed={"t": 1})
    assert len(sessions) == 4 and sessions.shape == (4, 32, 32)
    assert sessions.plane(2) == (1, 2)
    with pytest.raises(IndexError, match="out of range"):
        sessions.plane(4)
