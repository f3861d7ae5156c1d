"""Automatic instance segmentation: every object of an image, tile by tile, stitched at seams."""
