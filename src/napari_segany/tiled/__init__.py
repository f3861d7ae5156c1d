"""Images of any size: tile embeddings (in memory or a zarr cache) and prompts anywhere on them."""
