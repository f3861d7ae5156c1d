"""Model architectures (SAM ViT, MobileSAM TinyViT), checkpoint loading and the model registry."""
