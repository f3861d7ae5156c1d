"""Training of the embedded cell model on synthetic images (not imported by the plugin)."""
