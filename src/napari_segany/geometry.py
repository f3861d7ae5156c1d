"""The one rectangle type of the code: :class:`Rect`, image pixels, end-exclusive.

Public functions take the conventions users know and convert at the edge: prompt boxes are
inclusive ``(row0, col0, row1, col1)`` pixel coordinates (napari's shapes), regions of an image
are ``(slice, slice)`` for indexing. Inside, rectangles are :class:`Rect`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rect"]


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle of whole pixels, (row, col), end-exclusive.

    Attributes
    ----------
    row0, col0 : int
        First row and column inside.
    row1, col1 : int
        First row and column past the end, so ``rows = row1 - row0``.

    Examples
    --------
    >>> r = Rect.from_size(10, 20, 5, 8)
    >>> r.rows, r.cols, r.slices
    (5, 8, (slice(10, 15, None), slice(20, 28, None)))
    """

    row0: int
    col0: int
    row1: int
    col1: int

    @classmethod
    def from_size(cls, row0: int, col0: int, rows: int, cols: int) -> Rect:
        """The rectangle of ``rows`` × ``cols`` pixels whose top-left pixel is (row0, col0)."""
        return cls(int(row0), int(col0), int(row0) + int(rows), int(col0) + int(cols))

    @classmethod
    def from_slices(cls, region: tuple[slice, slice]) -> Rect:
        """From ``(row_slice, col_slice)`` with explicit starts and stops."""
        rows, cols = region
        return cls(int(rows.start), int(cols.start), int(rows.stop), int(cols.stop))

    @property
    def rows(self) -> int:
        return self.row1 - self.row0

    @property
    def cols(self) -> int:
        return self.col1 - self.col0

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.rows, self.cols

    @property
    def origin(self) -> tuple[int, int]:
        """(row0, col0), the image pixel of the rectangle's first pixel."""
        return self.row0, self.col0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(row_slice, col_slice)``: ``image[rect.slices]`` is the rectangle's pixels."""
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    def union(self, other: Rect) -> Rect:
        """The smallest rectangle holding both."""
        return Rect(
            min(self.row0, other.row0),
            min(self.col0, other.col0),
            max(self.row1, other.row1),
            max(self.col1, other.col1),
        )

    def holds(self, extent: tuple[float, float, float, float]) -> bool:
        """Whether the pixel centres ``(row_min, col_min, row_max, col_max)`` lie inside."""
        return (
            self.row0 <= extent[0]
            and self.col0 <= extent[1]
            and extent[2] <= self.row1 - 1
            and extent[3] <= self.col1 - 1
        )

    def shifted(self, drow: int, dcol: int) -> Rect:
        """The same rectangle moved by (drow, dcol) pixels."""
        return Rect(self.row0 + drow, self.col0 + dcol, self.row1 + drow, self.col1 + dcol)
