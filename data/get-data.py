#!/usr/bin/env python3
"""Downloads the project's datasets into data/ and verifies them against data/SHA256SUMS.

  python data/get-data.py                 # MNIST (4 files) and captcha_images_v2
  python data/get-data.py --only mnist
  python data/get-data.py --base-url http://127.0.0.1:8000/   # a mirror: <base>mnist/<file>,
                                                              # <base>captcha_images_v2.zip

Files already present with the right checksum are not downloaded again. A present
file with another checksum is left alone and reported (delete it, or pass --force).
Downloads go to a temporary file beside the target and are renamed into place only
after their checksum matched, so an interrupted run leaves nothing half-written.
Standard library only.
"""

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MNIST_URLS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
]
CAPTCHA_URL = "https://github.com/AakashKumarNain/CaptchaCracker/raw/master/captcha_images_v2.zip"
CAPTCHA_DIR = "captcha_images_v2"


class Failure(Exception):
    pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path):
    """{relative path: sha256} from a `sha256sum` listing."""
    entries = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise Failure(f"{path}:{n}: not a `sha256sum` line: {line!r}")
        entries[name.strip()] = digest.lower()
    return entries


def download(url, target, timeout):
    """Streams url into target (a temporary path); returns its sha256."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(target, "wb") as out:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as e:
        raise Failure(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise Failure(f"cannot download {url}: {reason}") from None
    return h.hexdigest()


def fetch_file(urls, dest, expected, timeout, force):
    """Downloads one file from the first URL that works; verifies before renaming."""
    if dest.exists():
        have = sha256_file(dest)
        if have == expected:
            print(f"ok       {dest.name} (already there)")
            return
        if not force:
            raise Failure(
                f"{dest}: exists with sha256 {have}, expected {expected}; delete it or pass --force"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        try:
            got = download(url, tmp, timeout)
            if got != expected:
                raise Failure(f"checksum mismatch for {url}: sha256 {got}, expected {expected}")
            os.replace(tmp, dest)
            print(f"fetched  {dest.name} from {url}")
            return
        except Failure as e:
            errors.append(str(e))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise Failure("; ".join(errors))


def get_mnist(manifest, dest, bases, timeout, force):
    files = {k: v for k, v in manifest.items() if k.startswith("mnist/")}
    if not files:
        raise Failure("the manifest lists no mnist/ files")
    for rel, digest in sorted(files.items()):
        name = rel.split("/", 1)[1]
        urls = [b if b.endswith("/") else b + "/" for b in bases]
        fetch_file([u + name for u in urls], dest / rel, digest, timeout, force)


def get_captchas(manifest, dest, url, timeout, force):
    prefix = CAPTCHA_DIR + "/"
    files = {k[len(prefix):]: v for k, v in manifest.items() if k.startswith(prefix)}
    if not files:
        raise Failure(f"the manifest lists no {prefix} files")
    out = dest / CAPTCHA_DIR
    todo = {n: d for n, d in files.items() if not ((out / n).exists() and sha256_file(out / n) == d)}
    if not todo:
        print(f"ok       {CAPTCHA_DIR}/ ({len(files)} files already there)")
        return
    for n, d in todo.items():
        if (out / n).exists() and not force:
            raise Failure(
                f"{out / n}: exists with another sha256 than {d}; delete it or pass --force"
            )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".captcha.", dir=dest) as tmp:
        archive = Path(tmp) / "archive.zip"
        download(url, archive, timeout)
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise Failure(f"{url}: not a zip archive") from None
        found = {}
        with zf:
            for info in zf.infolist():
                name = info.filename.rsplit("/", 1)[-1]
                if info.is_dir() or "__MACOSX" in info.filename or name not in todo:
                    continue
                data = zf.read(info)
                got = hashlib.sha256(data).hexdigest()
                if got != todo[name]:
                    raise Failure(
                        f"checksum mismatch for {name} in {url}: sha256 {got}, expected {todo[name]}"
                    )
                found[name] = data
        missing = sorted(set(todo) - set(found))
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise Failure(f"{url}: the archive lacks {', '.join(missing[:3])}{more}")
        staged = Path(tmp) / CAPTCHA_DIR
        staged.mkdir()
        for name, data in found.items():
            (staged / name).write_bytes(data)
        out.mkdir(parents=True, exist_ok=True)
        for name in sorted(found):
            os.replace(staged / name, out / name)
    print(f"fetched  {CAPTCHA_DIR}/ ({len(todo)} files) from {url}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dest", type=Path, default=HERE, help="target folder (default: data/)")
    p.add_argument("--manifest", type=Path, default=HERE / "SHA256SUMS")
    p.add_argument("--only", choices=["mnist", "captcha"], help="fetch one dataset only")
    p.add_argument(
        "--base-url",
        default=os.environ.get("HW4_DATA_BASE_URL"),
        help="a mirror holding mnist/<file> and captcha_images_v2.zip (env HW4_DATA_BASE_URL)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per connection")
    p.add_argument("--force", action="store_true", help="replace files whose checksum differs")
    a = p.parse_args(argv)
    if a.base_url:
        base = a.base_url if a.base_url.endswith("/") else a.base_url + "/"
        mnist_urls, captcha_url = [base + "mnist/"], base + CAPTCHA_DIR + ".zip"
    else:
        mnist_urls, captcha_url = MNIST_URLS, CAPTCHA_URL
    failures = 0
    try:
        manifest = read_manifest(a.manifest)
    except (Failure, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    jobs = []
    if a.only in (None, "mnist"):
        jobs.append(lambda: get_mnist(manifest, a.dest, mnist_urls, a.timeout, a.force))
    if a.only in (None, "captcha"):
        jobs.append(lambda: get_captchas(manifest, a.dest, captcha_url, a.timeout, a.force))
    for job in jobs:
        try:
            job()
        except (Failure, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
