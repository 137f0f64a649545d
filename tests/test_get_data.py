"""data/get-data.py against a loopback HTTP server serving small fixture files."""

import functools
import gzip
import hashlib
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data" / "get-data.py"
MNIST = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
CAPTCHAS = {"226md.png": b"png-1", "23n88.png": b"png-22", "bcdef.png": b"png-333"}


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Server:
    """Serves `root` on 127.0.0.1 and records the paths asked for."""

    def __init__(self, root):
        self.paths = []
        paths = self.paths

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror(tmp_path):
    """A mirror with four tiny IDX files and a zip of three 'captchas', plus a manifest."""
    site = tmp_path / "site"
    (site / "mnist").mkdir(parents=True)
    manifest = []
    for i, name in enumerate(MNIST):
        ndim = 3 if "images" in name else 1
        header = (0x800 | ndim).to_bytes(4, "big") + b"".join(
            d.to_bytes(4, "big") for d in ([2, 2, 2] if ndim == 3 else [2])
        )
        body = gzip.compress(header + bytes([i] * (8 if ndim == 3 else 2)), mtime=0)
        (site / "mnist" / name).write_bytes(body)
        manifest.append(f"{sha(body)}  mnist/{name}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("captcha_images_v2/", b"")
        for name, data in CAPTCHAS.items():
            z.writestr(f"captcha_images_v2/{name}", data)
            manifest.append(f"{sha(data)}  captcha_images_v2/{name}")
        z.writestr("__MACOSX/captcha_images_v2/._226md.png", b"junk")
    (site / "captcha_images_v2.zip").write_bytes(buf.getvalue())
    (tmp_path / "SHA256SUMS").write_text("\n".join(manifest) + "\n")
    server = Server(site)
    yield server, site, tmp_path
    server.close()


def run(tmp_path, url, *extra):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--dest", str(tmp_path / "data"),
         "--manifest", str(tmp_path / "SHA256SUMS"), "--base-url", url, "--timeout", "10", *extra],
        capture_output=True, text=True, timeout=60,
    )


def leftovers(d):
    return sorted(p.name for p in d.rglob("*") if p.name.startswith("."))


def test_downloads_verifies_and_skips_what_is_there(mirror):
    server, site, tmp = mirror
    r = run(tmp, server.url)
    assert r.returncode == 0, r.stderr
    data = tmp / "data"
    for name in MNIST:
        assert (data / "mnist" / name).read_bytes() == (site / "mnist" / name).read_bytes()
    assert {p.name for p in (data / "captcha_images_v2").iterdir()} == set(CAPTCHAS)
    for name, body in CAPTCHAS.items():
        assert (data / "captcha_images_v2" / name).read_bytes() == body
    assert leftovers(data) == []
    assert sorted(server.paths) == sorted(["/captcha_images_v2.zip"] + [f"/mnist/{n}" for n in MNIST])
    assert "fetched  captcha_images_v2/ (3 files)" in r.stdout

    server.paths.clear()
    r = run(tmp, server.url)
    assert r.returncode == 0, r.stderr
    assert server.paths == []
    assert "ok       captcha_images_v2/ (3 files already there)" in r.stdout
    assert "ok       t10k-images-idx3-ubyte.gz (already there)" in r.stdout


def test_checksum_mismatch_leaves_nothing(mirror):
    server, site, tmp = mirror
    (site / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    r = run(tmp, server.url, "--only", "mnist")
    assert r.returncode == 1
    assert "checksum mismatch for " + server.url + "mnist/t10k-labels-idx1-ubyte.gz" in r.stderr
    assert not (tmp / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert leftovers(tmp / "data") == []


def test_missing_file_and_incomplete_archive(mirror):
    server, site, tmp = mirror
    (site / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("captcha_images_v2/226md.png", CAPTCHAS["226md.png"])
    (site / "captcha_images_v2.zip").write_bytes(buf.getvalue())
    r = run(tmp, server.url)
    assert r.returncode == 1
    assert f"cannot download {server.url}mnist/train-images-idx3-ubyte.gz: HTTP 404 " in r.stderr
    assert f"{server.url}captcha_images_v2.zip: the archive lacks 23n88.png, bcdef.png" in r.stderr
    assert not (tmp / "data" / "captcha_images_v2").exists()
    assert leftovers(tmp / "data") == []


def test_user_files_are_not_overwritten(mirror):
    server, site, tmp = mirror
    mine = tmp / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own file")
    r = run(tmp, server.url, "--only", "mnist")
    assert r.returncode == 1
    assert f"{mine}: exists with sha256 {sha(b'my own file')}" in r.stderr
    assert "delete it or pass --force" in r.stderr
    assert mine.read_bytes() == b"my own file"
    r = run(tmp, server.url, "--only", "mnist", "--force")
    assert r.returncode == 0, r.stderr
    assert mine.read_bytes() == (site / "mnist" / mine.name).read_bytes()


def test_no_server_is_a_clear_error(tmp_path):
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  mnist/t10k-labels-idx1-ubyte.gz\n")
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run(tmp_path, f"http://127.0.0.1:{port}/", "--only", "mnist")
    assert r.returncode == 1
    assert f"cannot download http://127.0.0.1:{port}/mnist/t10k-labels-idx1-ubyte.gz" in r.stderr


def test_project_manifest_matches_the_shared_sets():
    """data/SHA256SUMS: the four MNIST files and the 1040 captchas, whose listing
    (`sha256sum *` in name order) has the checksum the shared README gives."""
    lines = (ROOT / "data" / "SHA256SUMS").read_text().splitlines()
    mnist = [l for l in lines if "  mnist/" in l]
    caps = sorted((l for l in lines if "  captcha_images_v2/" in l), key=lambda l: l.split("  ")[1])
    assert len(mnist) == 4 and len(caps) == 1040 and len(lines) == 1044
    assert {l.split("  mnist/")[1] for l in mnist} == set(MNIST)
    listing = "".join(l.replace("captcha_images_v2/", "") + "\n" for l in caps)
    assert sha(listing.encode()) == "02e7bd4748b447a23b7be443057429ddea0c95186a6aefc35e31eb4aae52a1a5"
