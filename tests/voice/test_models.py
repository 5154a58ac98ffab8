"""Model lookup and download, against a real HTTP server on loopback serving zips built here."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from voice.errors import ModelFetchError, ModelNotFound
from voice.models import fetch_model, locate_model, model_problem

MODEL = "vosk-model-tiny-test"
# The v2 layout vosk's Model::Model checks for, with placeholder bytes.
MODEL_FILES = {
    "am/final.mdl": b"acoustic model",
    "conf/model.conf": b"--beam=10\n",
    "conf/mfcc.conf": b"--use-energy=false\n",
    "graph/HCLG.fst": b"graph",
    "graph/words.txt": b"<eps> 0\n",
    "README": b"test model\n",
}


def make_zip(entries: dict[str, bytes], top: str | None = MODEL) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        if top is not None:
            zf.writestr(f"{top}/", b"")
        for name, data in entries.items():
            zf.writestr(f"{top}/{name}" if top is not None else name, data)
    return buffer.getvalue()


class Server:
    """Serves `files` (path -> bytes) on 127.0.0.1; anything else is a 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps shutdown() quick at teardown.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(5)


def entries(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_fetch_installs_the_model_where_locate_finds_it(server: Server, tmp_path: Path) -> None:
    archive = make_zip(MODEL_FILES)
    server.files["/m.zip"] = archive
    cache = tmp_path / "cache"

    path = fetch_model(server.url("/m.zip"), hashlib.sha256(archive).hexdigest(), cache, progress=True)

    assert path == cache / MODEL
    assert (path / "am" / "final.mdl").read_bytes() == b"acoustic model"
    assert locate_model(None, cache, MODEL) == path
    assert [p.name for p in cache.iterdir()] == [MODEL]  # no temporary files left beside it


def test_fetch_again_replaces_the_old_copy(server: Server, tmp_path: Path) -> None:
    server.files["/m.zip"] = make_zip({**MODEL_FILES, "README": b"version 2\n"})
    cache = tmp_path / "cache"
    (cache / MODEL).mkdir(parents=True)
    (cache / MODEL / "stale.txt").write_text("old")

    path = fetch_model(server.url("/m.zip"), None, cache, progress=False)

    assert (path / "README").read_bytes() == b"version 2\n"
    assert not (path / "stale.txt").exists()
    assert [p.name for p in cache.iterdir()] == [MODEL]


def test_checksum_mismatch_raises_and_leaves_nothing(server: Server, tmp_path: Path) -> None:
    server.files["/m.zip"] = make_zip(MODEL_FILES)
    cache = tmp_path / "cache"
    url = server.url("/m.zip")

    with pytest.raises(ModelFetchError, match="SHA-256") as caught:
        fetch_model(url, "0" * 64, cache, progress=False)

    assert url in str(caught.value)
    assert entries(cache) == []


def test_path_traversal_entry_is_rejected(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in MODEL_FILES.items():
            zf.writestr(f"{MODEL}/{name}", data)
        zf.writestr("../evil", b"owned")
    server.files["/evil.zip"] = buffer.getvalue()
    cache = tmp_path / "deep" / "cache"

    with pytest.raises(ModelFetchError, match=r"unsafe entry '\.\./evil'"):
        fetch_model(server.url("/evil.zip"), None, cache, progress=False)

    assert not (tmp_path / "deep" / "evil").exists()
    assert entries(tmp_path / "deep") == ["cache"]


def test_absolute_entry_is_rejected(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(zipfile.ZipInfo("/etc/evil"), b"owned")
    server.files["/abs.zip"] = buffer.getvalue()

    with pytest.raises(ModelFetchError, match="unsafe entry"):
        fetch_model(server.url("/abs.zip"), None, tmp_path, progress=False)


def test_http_404_names_the_url(server: Server, tmp_path: Path) -> None:
    url = server.url("/missing.zip")
    with pytest.raises(ModelFetchError, match="HTTP 404") as caught:
        fetch_model(url, None, tmp_path / "cache", progress=False)
    assert url in str(caught.value)
    assert entries(tmp_path / "cache") == []


def test_connection_refused_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/m.zip"  # nothing listens there any more
    with pytest.raises(ModelFetchError, match="retry may help") as caught:
        fetch_model(url, None, tmp_path, progress=False)
    assert url in str(caught.value)


def test_archive_without_a_model_is_refused(server: Server, tmp_path: Path) -> None:
    server.files["/notes.zip"] = make_zip({"notes.txt": b"hello"}, top="notes")
    with pytest.raises(ModelFetchError, match="does not hold a vosk model"):
        fetch_model(server.url("/notes.zip"), None, tmp_path / "cache", progress=False)
    assert entries(tmp_path / "cache") == []


def test_not_a_zip_is_refused(server: Server, tmp_path: Path) -> None:
    server.files["/m.zip"] = b"<html>a captive portal</html>"
    with pytest.raises(ModelFetchError, match="not a readable zip"):
        fetch_model(server.url("/m.zip"), None, tmp_path, progress=False)


def test_archive_without_top_folder_is_named_after_the_file(server: Server, tmp_path: Path) -> None:
    server.files["/flat-model.zip"] = make_zip(MODEL_FILES, top=None)
    path = fetch_model(server.url("/flat-model.zip"), None, tmp_path, progress=False)
    assert path == tmp_path / "flat-model"
    assert model_problem(path) is None


def write_model(folder: Path, files: dict[str, bytes] = MODEL_FILES) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_locate_prefers_the_explicit_path(tmp_path: Path) -> None:
    explicit = write_model(tmp_path / "mine")
    write_model(tmp_path / "cache" / MODEL)
    assert locate_model(explicit, tmp_path / "cache", MODEL) == explicit


def test_locate_accepts_the_folder_a_model_was_unpacked_into(tmp_path: Path) -> None:
    model = write_model(tmp_path / "models" / MODEL)
    assert locate_model(tmp_path / "models", tmp_path / "cache", MODEL) == model


def test_locate_accepts_the_flat_v1_layout(tmp_path: Path) -> None:
    model = write_model(tmp_path / "old", {"final.mdl": b"m", "mfcc.conf": b"c", "HCLr.fst": b"g", "Gr.fst": b"g"})
    assert locate_model(model, tmp_path, MODEL) == model


def one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


def test_nothing_found_says_how_to_get_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        locate_model(None, tmp_path / "cache", MODEL)
    message = str(caught.value)
    assert one_sentence(message)
    assert "`handoff models fetch`" in message
    assert "HANDOFF_VOSK_MODEL_PATH" in message
    assert str(tmp_path / "cache" / MODEL) in message


def test_missing_explicit_path_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    write_model(tmp_path / "cache" / MODEL)
    with pytest.raises(ModelNotFound, match="does not exist") as caught:
        locate_model(tmp_path / "typo", tmp_path / "cache", MODEL)
    assert one_sentence(str(caught.value))


def test_incomplete_model_says_what_is_missing(tmp_path: Path) -> None:
    files = {k: v for k, v in MODEL_FILES.items() if k != "graph/HCLG.fst"}
    write_model(tmp_path / "cache" / MODEL, files)
    with pytest.raises(ModelNotFound, match=r"graph/HCLG\.fst") as caught:
        locate_model(None, tmp_path / "cache", MODEL)
    assert one_sentence(str(caught.value))


def test_model_problem_names_the_missing_parts(tmp_path: Path) -> None:
    assert model_problem(tmp_path / "none") == "it is not a folder"
    assert model_problem(tmp_path) == "it has neither am/final.mdl nor final.mdl"
    write_model(tmp_path, {"am/final.mdl": b"m", "graph/HCLr.fst": b"g", "graph/Gr.fst": b"g"})
    assert model_problem(tmp_path) == "it lacks conf/model.conf, conf/mfcc.conf"
