"""The layer pickers of the annotator: image to segment, its channels, output labels layer.

The Channels list offers the axes that may hold channels of a multichannel image, and for an
RGB layer R, G, B or their mean, each segmented alone as a grayscale image. Its first entry,
automatic, reads an RGB image whose signal is in one channel as grayscale of that channel.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFormLayout, QWidget

from napari_segany._qt.image_source import channel_axes, rgb_channels
from napari_segany._qt.layers import SEGMENTATION_NAME, same_layer


class LayerPickers(QWidget):
    """Image, Channels and Output combo boxes, filled from the viewer's layers.

    Signals
    -------
    selection_changed()
        Another image, channel axis or channel was chosen.

    The Channels entries hold (channel axis, channel): (axis, None) for an axis of a
    multichannel image, (None, channel) for a channel of an RGB layer, (None, None) automatic.
    """

    selection_changed = Signal()

    def __init__(self, viewer, parent=None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("Image layer to segment (for stacks: the plane shown)")
        self.channel_combo = QComboBox()
        self.channel_combo.setToolTip(
            "Axis holding channels of a multichannel image; for an RGB image, the channel to "
            "segment (automatic: the only channel with signal, if just one has any)"
        )
        self.output_combo = QComboBox()
        self.output_combo.setToolTip(
            "Labels layer that receives committed objects (a new one by default; any Labels "
            "layer of the image's size, also a large zarr-backed one)"
        )
        form.addRow("Image", self.image_combo)
        form.addRow("Channels", self.channel_combo)
        form.addRow("Output", self.output_combo)
        self.image_combo.currentIndexChanged.connect(self._image_changed)
        self.channel_combo.currentIndexChanged.connect(lambda *_: self.selection_changed.emit())

    # -- choices ------------------------------------------------------------------------------
    def image_layer(self):
        """The chosen Image layer, or None."""
        return self.image_combo.currentData()

    def channel_axis(self) -> int | None:
        """The chosen channel axis of the image, None for grayscale or RGB."""
        return self._channel_entry()[0]

    def channel(self) -> int | str | None:
        """The chosen channel of an RGB image (0, 1, 2 or "mean"), None for automatic."""
        return self._channel_entry()[1]

    def _channel_entry(self) -> tuple:
        entry = self.channel_combo.currentData()
        return (None, None) if entry is None else entry

    def output_layer(self):
        """The chosen Labels layer, or None for a new "segmentation" layer."""
        return self.output_combo.currentData()

    # -- filling ------------------------------------------------------------------------------
    def refresh(self, exclude=None, prefer=None) -> None:
        """Fill the lists from the viewer's layers, keeping the choices that still exist.

        ``exclude`` is never offered as output (the current object layer); ``prefer`` is the
        output chosen when the previous choice is gone.
        """
        from napari.layers import Image

        self.refresh_outputs(exclude, prefer)
        current = self.image_combo.currentData()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        images = [layer for layer in self.viewer.layers if isinstance(layer, Image)]
        for layer in images:
            self.image_combo.addItem(layer.name, layer)
        index = next((i for i, layer in enumerate(images) if same_layer(layer, current)), 0)
        self.image_combo.setCurrentIndex(index if images else -1)
        self.image_combo.blockSignals(False)
        if not same_layer(self.image_combo.currentData(), current):
            self._image_changed()
        elif not images:
            self._fill_channels(None)

    def refresh_outputs(self, exclude=None, prefer=None) -> None:
        """Fill the output list (see :meth:`refresh`)."""
        from napari.layers import Labels

        current = self.output_combo.currentData()
        self.output_combo.blockSignals(True)
        self.output_combo.clear()
        self.output_combo.addItem(f"{SEGMENTATION_NAME} (new layer)", None)
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and not same_layer(layer, exclude):
                self.output_combo.addItem(layer.name, layer)
        index = self.output_combo.findData(current) if current is not None else -1
        if index < 0 and prefer is not None:
            index = self.output_combo.findData(prefer)
        self.output_combo.setCurrentIndex(max(index, 0))
        self.output_combo.blockSignals(False)

    def _fill_channels(self, layer) -> None:
        self.channel_combo.blockSignals(True)
        self.channel_combo.clear()
        rgb = layer is not None and layer.rgb
        automatic = "auto: all, or the one with signal" if rgb else "none (grayscale)"
        self.channel_combo.addItem(automatic, (None, None))
        if layer is not None:
            for axis in channel_axes(layer):
                self.channel_combo.addItem(f"axis {axis} ({layer.data.shape[axis]})", (axis, None))
            for name, channel in rgb_channels(layer):
                self.channel_combo.addItem(name, (None, channel))
        self.channel_combo.setEnabled(self.channel_combo.count() > 1)
        self.channel_combo.blockSignals(False)

    def _image_changed(self, *args) -> None:
        self._fill_channels(self.image_combo.currentData())
        self.selection_changed.emit()
