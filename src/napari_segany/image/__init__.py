"""Pixels in: reading image planes of any size, scaling them to the model's 8-bit RGB, tiling.

The lowest layer above the utilities: it knows nothing of models, prompts or Qt.
"""
