"""Run the command line: ``python -m napari_segany ...``."""

from napari_segany.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
