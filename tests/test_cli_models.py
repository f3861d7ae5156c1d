"""Tests for ``napari-segany models`` (no network: file:// URLs and a closed local port)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

# pooch logs downloads through a handler bound to sys.stderr when it is first imported: import it
# while collecting, not inside a test whose captured stderr is closed after it
import pooch  # noqa: F401

from napari_segany import cli
from napari_segany.models.registry import MODELS, ModelInfo

SRC = Path(__file__).resolve().parents[1] / "src"
CONTENT = b"tiny weights " * 100


def register(monkeypatch, url: str, content: bytes = CONTENT) -> ModelInfo:
    info = ModelInfo(
        name="tiny",
        architecture="vit_t",
        url=url,
        known_hash="sha256:" + hashlib.sha256(content).hexdigest(),
        size_bytes=None,
        license="Apache-2.0",
        description="tiny test model",
        filename="tiny.pt",
    )
    monkeypatch.setitem(MODELS, "tiny", info)
    return info


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.pt"


def test_models_table(cache, capsys, monkeypatch):
    register(monkeypatch, "https://example.invalid/tiny.pt")
    cache.mkdir()
    (cache / "tiny.pt").write_bytes(b"x")
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = ["name", "arch", "size", "MB", "cached", "decoder", "licence", "description"]
    assert lines[0].split() == header
    by_name = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert by_name["vit_b"][1:6] == ["vit_b", "375.0", "no", "-", "Apache-2.0"]
    # micro-sam's models come with an instance-segmentation decoder
    assert by_name["vit_b_lm"][1:6] == ["vit_b", "?", "no", "yes", "CC-BY-4.0"]
    assert by_name["tiny"][1:6] == ["vit_t", "?", "yes", "-", "Apache-2.0"]
    assert str(cache) in out
    for name in MODELS:
        assert name in by_name


def test_models_json(cache, capsys):
    assert cli.main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(MODELS)
    vit_b = rows[[row["name"] for row in rows].index("vit_b")]
    assert vit_b["size_bytes"] == 375_042_383
    assert vit_b["cached"] is False
    assert vit_b["license"] == "Apache-2.0"
    assert vit_b["path"] == str(cache / "sam_vit_b_01ec64.pth")
    assert vit_b["decoder"] is None
    vit_b_lm = rows[[row["name"] for row in rows].index("vit_b_lm")]
    assert vit_b_lm["decoder"]["known_hash"].startswith("xxh128:")
    assert vit_b_lm["decoder_settings"]["min_size"] == 100
    assert vit_b_lm["decoder_cached"] is False


def test_download_success(tmp_path, cache, capsys, monkeypatch):
    source = tmp_path / "source.pt"
    source.write_bytes(CONTENT)
    register(monkeypatch, source.as_uri())
    assert cli.main(["models", "--download", "tiny"]) == 0
    assert str(cache / "tiny.pt") in capsys.readouterr().out
    assert (cache / "tiny.pt").read_bytes() == CONTENT


def test_download_failure_exit_code_and_message(cache, capsys, monkeypatch):
    url = closed_port_url()
    register(monkeypatch, url)
    assert cli.main(["models", "--download", "tiny"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "'tiny'" in captured.err
    assert url in captured.err
    assert str(cache / "tiny.pt") in captured.err
    assert captured.out == ""


def test_download_unknown_name(cache, capsys):
    assert cli.main(["models", "--download", "vit_bb"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'vit_b'" in err
    assert "Traceback" not in err


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "models" in capsys.readouterr().err


def _run(args, cache_folder, code=None):
    env = {**os.environ, "PYTHONPATH": str(SRC), "NAPARI_SEGANY_CACHE": str(cache_folder)}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "napari_segany"]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_python_dash_m(tmp_path):
    result = _run(["models", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)] == list(MODELS)
    assert _run(["models", "--download", "nope"], tmp_path).returncode == 2


def test_cli_import_does_not_import_torch(tmp_path):
    code = (
        "import sys, napari_segany.cli as c\n"
        "assert c.main(['models', '--json']) == 0\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    result = _run([], tmp_path, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "False"
