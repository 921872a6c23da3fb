"""python -m workloads fetch against a local HTTP server on 127.0.0.1 (never the real sets):
a whole download, a truncated one resumed, a checksum mismatch, a server without ranges."""
import hashlib
import http.server
import shutil
import subprocess
import threading

import numpy as np
import pytest

from workloads import fetch
from workloads.sosd import read_keys, write_keys

pytestmark = pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.body at any path, honouring Range; server.cut_at ends a response early."""

    def do_GET(self):
        body, start = self.server.body, 0
        self.server.ranges.append(self.headers.get("Range"))
        if self.headers.get("Range") and self.server.honour_range:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        end = len(body) if self.server.cut_at is None else self.server.cut_at
        self.wfile.write(body[start:end])
        self.server.cut_at = None  # only the first response is cut
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.body, httpd.cut_at, httpd.honour_range, httpd.ranges = b"", None, True, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def published(tmp_path, server):
    """A small SOSD file, zstd-compressed on the server; its KeySet entry."""
    raw = tmp_path / "src" / "tiny_uint64"
    raw.parent.mkdir()
    write_keys(raw, np.cumsum(np.random.default_rng(0).integers(1, 1000, 300_000)).astype(np.uint64))
    subprocess.run(["zstd", "-q", "-1", str(raw), "-o", str(raw) + ".zst"], check=True)
    server.body = (raw.parent / "tiny_uint64.zst").read_bytes()
    data = raw.read_bytes()
    url = f"http://127.0.0.1:{server.server_port}/tiny.zst"
    return fetch.KeySet("tiny_uint64", url, len(data), hashlib.md5(data).hexdigest()), read_keys(raw)


def test_whole_download_is_checked_and_renamed(published, tmp_path):
    keyset, keys = published
    out = tmp_path / "data"
    path = fetch.fetch(keyset, out, log=lambda *a: None)
    assert path == out / "tiny_uint64" and (read_keys(path) == keys).all()
    assert sorted(p.name for p in out.iterdir()) == ["tiny_uint64"]  # no partial files left


def test_truncated_download_resumes_where_it_stopped(published, server, tmp_path):
    keyset, keys = published
    out = tmp_path / "data"
    server.cut_at = len(server.body) // 3
    with pytest.raises(fetch.FetchError, match="stopped at .* run the same command to resume"):
        fetch.fetch(keyset, out, log=lambda *a: None)
    part = out / "tiny_uint64.zst.part"
    assert part.stat().st_size == len(server.body) // 3 and not (out / "tiny_uint64").exists()
    fetch.fetch(keyset, out, log=lambda *a: None)
    assert server.ranges[-1] == f"bytes={len(server.body) // 3}-"
    assert (read_keys(out / "tiny_uint64") == keys).all() and not part.exists()


def test_checksum_mismatch_removes_the_download(published, tmp_path):
    keyset, _ = published
    out = tmp_path / "data"
    wrong = fetch.KeySet(keyset.file, keyset.url, keyset.size, "0" * 32)
    with pytest.raises(fetch.FetchError, match="MD5 differs"):
        fetch.fetch(wrong, out, log=lambda *a: None)
    assert list(out.iterdir()) == []
    short = fetch.KeySet(keyset.file, keyset.url, keyset.size + 8, keyset.md5)
    with pytest.raises(fetch.FetchError, match="expected"):
        fetch.fetch(short, out, log=lambda *a: None)
    assert list(out.iterdir()) == []


def test_a_server_without_ranges_starts_over(published, server, tmp_path):
    keyset, keys = published
    out = tmp_path / "data"
    out.mkdir()
    (out / "tiny_uint64.zst.part").write_bytes(b"stale bytes")
    server.honour_range = False
    fetch.fetch(keyset, out, log=lambda *a: None)
    assert (read_keys(out / "tiny_uint64") == keys).all()


def test_a_sound_file_is_not_downloaded_again(published, server, tmp_path):
    keyset, _ = published
    out = tmp_path / "data"
    fetch.fetch(keyset, out, log=lambda *a: None)
    server.body = b"garbage"
    fetch.fetch(keyset, out, log=lambda *a: None)
    assert len(server.ranges) == 1


def test_cli_mismatch_exits_1_with_its_own_message(server, tmp_path, capsys):
    """The real books entry fetched from a local mirror that serves something else."""
    from workloads.__main__ import main

    raw = tmp_path / "other"
    raw.write_bytes(b"\0" * 64)
    subprocess.run(["zstd", "-q", str(raw), "-o", str(raw) + ".zst"], check=True)
    server.body = (tmp_path / "other.zst").read_bytes()
    url = f"http://127.0.0.1:{server.server_port}/books.zst"
    assert main(["fetch", "books", "--dir", str(tmp_path / "data"), "--url", url]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "books_200M_uint64: 64 bytes, expected 1,600,000,008" in err, err


def test_published_sets_are_the_sosd_ones():
    assert sorted(fetch.SETS) == ["books", "fb", "osm", "wiki"]
    for keyset in fetch.SETS.values():
        assert keyset.size == 8 + 8 * 200_000_000 and len(keyset.md5) == 32
        assert keyset.url.startswith("https://dataverse.harvard.edu/") and keyset.file.endswith("_200M_uint64")
