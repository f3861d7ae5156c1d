"""Model, device and tiling controls of the annotator, remembered between napari sessions.

The Model list holds the registry's models, the models the user trained (by name, from
:func:`napari_segany.models.trained.trained_models`) and "From file…".
"""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QSpinBox, QWidget

from napari_segany.models.registry import DEFAULT_MODEL
from napari_segany.user_settings import DEVICES, AnnotatorSettings

FILE_ITEM = "file"


def model_items() -> list[tuple[str, str]]:
    """(text, registry name) of every registry model, saying whether it is cached."""
    from napari_segany.models.download import is_cached
    from napari_segany.models.registry import MODELS

    items = []
    for name, info in MODELS.items():
        if info.is_bundled:
            text = f"{name} (embedded)"
        elif is_cached(name):
            text = f"{name} (cached)"
        else:
            size = f", {info.size_bytes / 1e6:.0f} MB" if info.size_bytes else ""
            text = f"{name} (not cached: downloads{size})"
        items.append((text, name))
    return items


def trained_items() -> list[tuple[str, str]]:
    """(text, name) of every model in the user's trained-model folder."""
    from napari_segany.models.trained import trained_models

    return [(f"{name} (trained)", name) for name in trained_models()]


def _auto_spin(tooltip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, 16384)
    spin.setSingleStep(64)
    spin.setSpecialValueText("auto")
    spin.setToolTip(tooltip)
    return spin


class ModelControls(QWidget):
    """Model picker (registry models, trained models, "From file…"), device, tile size, halo.

    Every change is saved to :class:`~napari_segany.user_settings.AnnotatorSettings`; a failure
    to save is reported through :attr:`message`, never raised.
    """

    #: a line for the user (e.g. settings could not be saved)
    message = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.settings = AnnotatorSettings.load()
        self._restoring = False
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.model_combo = QComboBox()
        self._fill_models()
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICES))
        self.tile_spin = _auto_spin("Tile size in pixels (auto: the model's input size)")
        self.halo_spin = _auto_spin("Overlap around each tile in pixels (auto: from the model)")
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Tile size", self.tile_spin)
        form.addRow("Halo", self.halo_spin)
        self._restore()
        self.model_combo.activated.connect(self._model_activated)
        self.device_combo.currentIndexChanged.connect(self.save)
        self.tile_spin.valueChanged.connect(self.save)
        self.halo_spin.valueChanged.connect(self.save)

    # -- values -------------------------------------------------------------------------------
    def model_spec(self) -> str:
        """Registry name or checkpoint path of the chosen model."""
        name = self.model_combo.currentData()
        if name == FILE_ITEM:
            if not self.settings.checkpoint:
                raise ValueError("Choose a checkpoint file (Model: From file…).")
            return self.settings.checkpoint
        return name or DEFAULT_MODEL

    def device(self) -> str:
        return self.device_combo.currentText()

    def tile_size(self) -> int | None:
        """Tile size in pixels, None for automatic."""
        return self.tile_spin.value() or None

    def halo(self) -> int | None:
        """Halo in pixels, None for automatic."""
        return self.halo_spin.value() or None

    def key(self) -> tuple:
        """Identifies the choices that change embeddings."""
        return (self.model_combo.currentData(), self.settings.checkpoint, self.device(),
                self.tile_spin.value(), self.halo_spin.value())  # fmt: skip

    # -- model list ---------------------------------------------------------------------------
    def _fill_models(self) -> None:
        for text, name in model_items() + trained_items():
            self.model_combo.addItem(text, name)
        self.model_combo.addItem("From file…", FILE_ITEM)

    def refresh_models(self) -> None:
        """List the models again (e.g. after training one), keeping the current choice."""
        current = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        try:
            self.model_combo.clear()
            self._fill_models()
            self._update_file_item()
            index = self.model_combo.findData(current)
            if index < 0:
                index = self.model_combo.findData(DEFAULT_MODEL)
            self.model_combo.setCurrentIndex(max(index, 0))
        finally:
            self.model_combo.blockSignals(False)

    def select_model(self, name: str) -> bool:
        """Choose the listed model ``name`` (registry or trained); False if it is not listed."""
        index = self.model_combo.findData(name)
        if index < 0:
            return False
        self.model_combo.setCurrentIndex(index)
        self.save()
        return True

    # -- checkpoint file ----------------------------------------------------------------------
    def set_checkpoint(self, path: str) -> None:
        """Use a local checkpoint file as the model (what "From file…" does)."""
        self.settings.checkpoint = str(path)
        self._update_file_item()
        self.model_combo.setCurrentIndex(self.model_combo.findData(FILE_ITEM))
        self.save()

    def _model_activated(self, index: int) -> None:
        if self.model_combo.itemData(index) == FILE_ITEM:
            path, _ = QFileDialog.getOpenFileName(
                self, "Segment Anything checkpoint", self.settings.checkpoint or "",
                "Checkpoints (*.pth *.pt *.ckpt);;All files (*)",
            )  # fmt: skip
            if path:
                self.set_checkpoint(path)
            elif not self.settings.checkpoint:
                self.model_combo.setCurrentIndex(self.model_combo.findData(DEFAULT_MODEL))
        self.save()

    def _update_file_item(self) -> None:
        index = self.model_combo.findData(FILE_ITEM)
        path = self.settings.checkpoint
        text = f"File: {path.replace(chr(92), '/').rsplit('/', 1)[-1]}" if path else "From file…"
        self.model_combo.setItemText(index, text)
        self.model_combo.setItemData(index, path or "", Qt.ToolTipRole)

    # -- settings -----------------------------------------------------------------------------
    def _restore(self) -> None:
        s = self.settings
        self._restoring = True
        try:
            self._update_file_item()
            index = self.model_combo.findData(s.model)
            if index < 0 or (s.model == FILE_ITEM and not s.checkpoint):
                index = self.model_combo.findData(DEFAULT_MODEL)
            self.model_combo.setCurrentIndex(max(index, 0))
            self.device_combo.setCurrentText(s.device)
            self.tile_spin.setValue(s.tile_size)
            self.halo_spin.setValue(s.halo)
        finally:
            self._restoring = False

    def save(self, *args) -> None:
        """Write the current choices to the settings file."""
        if self._restoring:
            return
        s = self.settings
        s.model = self.model_combo.currentData() or DEFAULT_MODEL
        s.device = self.device()
        s.tile_size = int(self.tile_spin.value())
        s.halo = int(self.halo_spin.value())
        try:
            s.save()
        except OSError as exc:  # settings are a convenience: never break the annotator
            self.message.emit(f"Could not save settings: {exc}")
