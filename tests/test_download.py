"""Tests for the model cache and downloads.

Everything runs against a local HTTP server on 127.0.0.1 or ``file://`` URLs, with a registry
entry monkeypatched in and the cache redirected to ``tmp_path``: no real internet, no real cache.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import platformdirs
import pooch
import pytest
import xxhash

from napari_segany.models import download
from napari_segany.models.download import (
    ModelDownloadError,
    ModelFileNotFoundError,
    cache_dir,
    cached_path,
    fetch_model,
    is_cached,
    resolve_model_path,
    verify_file,
)
from napari_segany.models.registry import MODELS, ModelInfo, UnknownModelError

CONTENT = b"not really a checkpoint, " * 2000  # 50 kB


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def xxh128(data: bytes) -> str:
    return "xxh128:" + xxhash.xxh128(data).hexdigest()


class _Server:
    """A tiny HTTP file server on 127.0.0.1 that counts GET requests per path."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.close()


@pytest.fixture
def closed_port_url():
    """An http URL on 127.0.0.1 at a port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.pt"


def register(monkeypatch, url, known_hash=None, name="tiny", **changes) -> ModelInfo:
    fields = {
        "name": name,
        "architecture": "vit_t",
        "url": url,
        "known_hash": known_hash or sha256(CONTENT),
        "size_bytes": len(CONTENT),
        "license": "Apache-2.0",
        "description": "test model",
        "filename": f"{name}.pt",
    }
    fields.update(changes)
    info = ModelInfo(**fields)
    monkeypatch.setitem(MODELS, name, info)
    return info


@pytest.fixture
def hash_calls(monkeypatch):
    """Count calls of pooch.file_hash."""
    calls = []
    original = pooch.file_hash

    def counting(fname, alg="sha256"):
        calls.append(fname)
        return original(fname, alg)

    monkeypatch.setattr(pooch, "file_hash", counting)
    return calls


# --------------------------------------------------------------------------------------------
# cache locations


def test_cache_dir_env_override(cache):
    assert cache_dir() == cache


def test_cache_dir_default(monkeypatch):
    monkeypatch.delenv("NAPARI_SEGANY_CACHE", raising=False)
    assert cache_dir() == Path(platformdirs.user_cache_dir("napari-segany")) / "models"


def test_cached_path_and_is_cached(cache, monkeypatch):
    assert cached_path("vit_b") == cache / "sam_vit_b_01ec64.pth"
    register(monkeypatch, "https://example.invalid/tiny.pt")
    assert not is_cached("tiny")
    cache.mkdir()
    (cache / "tiny.pt").write_bytes(b"x")
    assert is_cached("tiny")  # presence only, no hash check
    with pytest.raises(UnknownModelError):
        cached_path("nope")


# --------------------------------------------------------------------------------------------
# hashing


def test_verify_file_sha256_and_xxh128(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "_VERIFIED", {})
    path = tmp_path / "w.pt"
    path.write_bytes(CONTENT)
    assert verify_file(path, sha256(CONTENT))
    assert verify_file(path, xxh128(CONTENT))
    assert not verify_file(path, sha256(b"other"))
    assert not verify_file(path, xxh128(b"other"))
    assert not verify_file(tmp_path / "missing.pt", sha256(CONTENT))


def test_verify_result_is_cached_until_the_file_changes(tmp_path, monkeypatch, hash_calls):
    monkeypatch.setattr(download, "_VERIFIED", {})
    path = tmp_path / "w.pt"
    path.write_bytes(CONTENT)
    assert verify_file(path, sha256(CONTENT))
    assert verify_file(path, sha256(CONTENT))
    assert len(hash_calls) == 1
    path.write_bytes(CONTENT[:-1] + b"!")  # same size, new mtime
    os.utime(path, ns=(1, 1))
    assert not verify_file(path, sha256(CONTENT))
    assert len(hash_calls) == 2


# --------------------------------------------------------------------------------------------
# fetching


def test_http_download_then_cached_without_request(server, cache, monkeypatch, hash_calls):
    server.files["/tiny.pt"] = CONTENT
    register(monkeypatch, server.url("/tiny.pt"))

    path = fetch_model("tiny", progress=False)
    assert path == cached_path("tiny") == cache / "tiny.pt"
    assert path.read_bytes() == CONTENT
    assert server.requests == ["/tiny.pt"]
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.pt"]  # no temporary file left

    hashes_after_download = len(hash_calls)
    assert fetch_model("tiny", progress=False) == path
    assert server.requests == ["/tiny.pt"]  # no second request
    assert len(hash_calls) == hashes_after_download  # and no rehash in this process


def test_wrong_hash_on_server(server, cache, monkeypatch):
    server.files["/tiny.pt"] = CONTENT + b"tampered"
    info = register(monkeypatch, server.url("/tiny.pt"))
    with pytest.raises(ModelDownloadError) as excinfo:
        fetch_model("tiny", progress=False)
    message = str(excinfo.value)
    assert "'tiny'" in message
    assert info.url in message
    assert info.known_hash in message
    assert "does not match" in message
    assert not cached_path("tiny").exists()
    assert list(cache.iterdir()) == []  # pooch removed its temporary file
    assert excinfo.value.__suppress_context__


def test_truncated_cache_file_is_moved_aside_and_redownloaded(server, cache, monkeypatch):
    server.files["/tiny.pt"] = CONTENT
    register(monkeypatch, server.url("/tiny.pt"))
    cache.mkdir()
    target = cache / "tiny.pt"
    target.write_bytes(CONTENT[:1000])

    assert fetch_model("tiny", progress=False) == target
    assert target.read_bytes() == CONTENT
    assert (cache / "tiny.pt.corrupt").read_bytes() == CONTENT[:1000]
    assert server.requests == ["/tiny.pt"]


def test_corrupt_cache_file_and_failed_download_raises(cache, monkeypatch, closed_port_url):
    register(monkeypatch, closed_port_url)
    cache.mkdir()
    (cache / "tiny.pt").write_bytes(b"garbage")
    with pytest.raises(ModelDownloadError):
        fetch_model("tiny", progress=False)
    assert not (cache / "tiny.pt").exists()  # never handed out, moved aside
    assert (cache / "tiny.pt.corrupt").exists()


def test_offline_message(cache, monkeypatch, closed_port_url):
    info = register(monkeypatch, closed_port_url)
    with pytest.raises(ModelDownloadError) as excinfo:
        fetch_model("tiny", progress=False)
    error = excinfo.value
    message = str(error)
    assert "'tiny'" in message
    assert closed_port_url in message
    assert str(cache / "tiny.pt") in message
    assert info.known_hash in message
    assert "reason:" in message
    assert "offline" in message
    assert error.__cause__ is None and error.__suppress_context__
    assert (error.model, error.url, error.path) == ("tiny", closed_port_url, cache / "tiny.pt")
    assert not (cache / "tiny.pt").exists()


def test_http_404(server, cache, monkeypatch):
    register(monkeypatch, server.url("/missing.pt"))
    with pytest.raises(ModelDownloadError, match="404"):
        fetch_model("tiny", progress=False)


def test_manually_placed_file_is_used_without_network(cache, monkeypatch, closed_port_url):
    register(monkeypatch, closed_port_url)
    cache.mkdir()
    cached_path("tiny").write_bytes(CONTENT)
    assert fetch_model("tiny", progress=False) == cache / "tiny.pt"


def test_file_url_and_xxh128(tmp_path, cache, monkeypatch):
    source = tmp_path / "source.pt"
    source.write_bytes(CONTENT)
    register(monkeypatch, source.as_uri(), known_hash=xxh128(CONTENT))
    path = fetch_model("tiny", progress=False)
    assert path.read_bytes() == CONTENT
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.pt"]


def test_file_url_missing_source(tmp_path, cache, monkeypatch):
    url = (tmp_path / "absent.pt").as_uri()
    register(monkeypatch, url)
    with pytest.raises(ModelDownloadError, match=r"absent\.pt"):
        fetch_model("tiny", progress=False)
    assert not cached_path("tiny").exists()


def test_not_enough_disk_space(tmp_path, cache, monkeypatch):
    source = tmp_path / "source.pt"
    source.write_bytes(CONTENT)
    register(monkeypatch, source.as_uri(), size_bytes=10**18)
    with pytest.raises(ModelDownloadError, match="disk space"):
        fetch_model("tiny", progress=False)


def test_bundled_model(tmp_path, cache, monkeypatch, hash_calls):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "tiny.pt").write_bytes(CONTENT)
    monkeypatch.setattr(download, "_weights_dir", lambda: weights)
    register(monkeypatch, None, bundled="tiny.pt")
    assert cached_path("tiny") == weights / "tiny.pt"
    assert is_cached("tiny")
    assert fetch_model("tiny") == weights / "tiny.pt"
    assert fetch_model("tiny") == weights / "tiny.pt"
    assert len(hash_calls) == 1
    assert not cache.exists()  # nothing written to the cache


def test_bundled_model_corrupt(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(download, "_weights_dir", lambda: tmp_path)
    (tmp_path / "tiny.pt").write_bytes(b"broken")
    register(monkeypatch, None, bundled="tiny.pt")
    with pytest.raises(ModelDownloadError, match="Reinstall"):
        fetch_model("tiny")
    assert (tmp_path / "tiny.pt").exists()  # a packaged file is never moved


# --------------------------------------------------------------------------------------------
# resolve_model_path


def test_resolve_existing_file(tmp_path, cache):
    path = tmp_path / "my weights.bin"
    path.write_bytes(b"x")
    assert resolve_model_path(path) == (path, None)
    assert resolve_model_path(str(path)) == (path, None)


def test_resolve_expands_user(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.pth").write_bytes(b"x")
    assert resolve_model_path("~/w.pth") == (tmp_path / "w.pth", None)


def test_resolve_registry_name(tmp_path, cache, monkeypatch):
    source = tmp_path / "source.pt"
    source.write_bytes(CONTENT)
    info = register(monkeypatch, source.as_uri())
    assert resolve_model_path("tiny", progress=False) == (cache / "tiny.pt", info)


@pytest.mark.parametrize("text", ["missing.pt", "some/dir/weights", "w.safetensors"])
def test_resolve_missing_path(tmp_path, monkeypatch, text, cache):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFileNotFoundError) as excinfo:
        resolve_model_path(text)
    assert str(excinfo.value) == f"file not found: {tmp_path / text}"
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, FileNotFoundError)


def test_resolve_missing_path_object(tmp_path, cache):
    with pytest.raises(ModelFileNotFoundError, match="file not found"):
        resolve_model_path(tmp_path / "vit_b")


def test_resolve_directory(tmp_path, cache):
    with pytest.raises(ModelFileNotFoundError, match="directory"):
        resolve_model_path(str(tmp_path) + os.sep)


def test_resolve_unknown_name(tmp_path, monkeypatch, cache):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as excinfo:
        resolve_model_path("vit_b_lmm")
    message = str(excinfo.value)
    assert "neither an existing file nor a known model" in message
    assert "Did you mean 'vit_b_lm'" in message
    for name in MODELS:
        assert name in message
