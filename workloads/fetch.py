"""The public SOSD key sets, downloaded with size and checksum checks and resumable writes.

Source: the SOSD benchmark (Marcus et al., "Benchmarking Learned Indexes",
VLDB 2021; https://github.com/learnedsystems/SOSD), whose key sets are
published on Harvard Dataverse (doi:10.7910/DVN/JGVF9A) as zstd-compressed
SOSD files: 200M sorted uint64 keys after an 8-byte count, 1,600,000,008
bytes each once decompressed.  The MD5 sums are those SOSD's download
script checks, of the decompressed files.

The compressed file is written to ``<name>.zst.part`` beside the target, so
an interrupted download resumes (an HTTP Range request) where it stopped;
it is decompressed with the ``zstd`` command to ``<name>.tmp``, checked
(size, then MD5) and only then renamed to ``<name>``.  A bad checksum
removes both partial files.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DATAVERSE = "https://dataverse.harvard.edu/api/access/datafile/:persistentId?persistentId=doi:10.7910/DVN/JGVF9A/"
SOSD_200M_BYTES = 8 + 8 * 200_000_000
CHUNK = 1 << 20


class FetchError(Exception):
    """A download that did not yield the published file (cut short, wrong size or checksum)."""


@dataclass(frozen=True)
class KeySet:
    """One published key set: its SOSD file name, URL of the .zst, decompressed size and MD5."""

    file: str
    url: str
    size: int
    md5: str


#: The public SOSD sets by short name (the README's "where the data comes from").
SETS = {
    "books": KeySet("books_200M_uint64", DATAVERSE + "A6HDNT", SOSD_200M_BYTES, "aeedc7be338399ced89d0bb82287e024"),
    "fb": KeySet("fb_200M_uint64", DATAVERSE + "EATHF7", SOSD_200M_BYTES, "3b0f820caa0d62150e87ce94ec989978"),
    "osm": KeySet("osm_cellids_200M_uint64", DATAVERSE + "8FX9BV", SOSD_200M_BYTES, "a7f6b8d2df09fcda5d9cfbc87d765979"),
    "wiki": KeySet("wiki_ts_200M_uint64", DATAVERSE + "SVN8PI", SOSD_200M_BYTES, "4f1402b1c476d67f77d2da4955432f7d"),
}


def md5_of(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def is_complete(keyset: KeySet, path: Path) -> bool:
    """path holds the published file (size first: the MD5 reads it all)."""
    return path.is_file() and path.stat().st_size == keyset.size and md5_of(path) == keyset.md5


def download(url: str, part: Path, log=print) -> int:
    """Appends the rest of url's body to part (resuming at its size); returns the body's total bytes.

    Raises FetchError if the connection ends before the announced length
    (part keeps what came: the next call resumes), OSError/URLError on
    network errors.  O(bytes) time, O(CHUNK) memory.
    """
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # asked past the end: part already holds the whole body
            return have
        raise
    with response:
        if response.status == 206:
            total = int(response.headers["Content-Range"].rsplit("/", 1)[1])
        else:  # 200: the server sends the whole body, so start over
            have = 0
            total = int(response.headers.get("Content-Length", -1))
        if have:
            log(f"resuming {part.name} at {have:,} of {total:,} bytes")
        with open(part, "ab" if have else "wb") as out:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
            except http.client.IncompleteRead as cut:
                out.write(cut.partial)
    got = part.stat().st_size
    if total >= 0 and got != total:
        raise FetchError(f"download of {url} stopped at {got:,} of {total:,} bytes; run the same command to resume")
    return got


def fetch(keyset: KeySet, folder: Path, url: str | None = None, log=print) -> Path:
    """folder/<keyset.file>, downloaded (from url, default keyset.url) unless it is already there and sound.

    Raises FetchError for a truncated download (resumable), a wrong size or a
    wrong MD5 (the partial files are removed: the next run starts afresh).
    Needs the zstd command.  O(file) time and disk, O(1 MiB) memory.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / keyset.file
    if is_complete(keyset, target):
        log(f"{target} is already there (size and MD5 match)")
        return target
    part = folder / (keyset.file + ".zst.part")
    raw = folder / (keyset.file + ".tmp")
    log(f"downloading {keyset.file} from {url or keyset.url}")
    download(url or keyset.url, part, log)
    log(f"decompressing {part.name}")
    done = subprocess.run(["zstd", "-d", "-q", "-f", str(part), "-o", str(raw)], capture_output=True, text=True)
    if done.returncode != 0:
        raw.unlink(missing_ok=True)
        part.unlink()
        raise FetchError(f"{part.name} is not a zstd file ({done.stderr.strip()}); removed it, run again")
    size = raw.stat().st_size
    problem = (f"{size:,} bytes, expected {keyset.size:,}" if size != keyset.size else
               None if md5_of(raw) == keyset.md5 else f"MD5 differs from the published {keyset.md5}")
    if problem:
        raw.unlink()
        part.unlink()
        raise FetchError(f"{keyset.file}: {problem}; removed the download, run again")
    os.replace(raw, target)
    part.unlink()
    log(f"wrote {target} ({size:,} bytes, MD5 ok)")
    return target


def check_can_fetch(keyset: KeySet, folder: Path) -> str | None:
    """Why fetch cannot start (no zstd command, too little free disk), or None."""
    if shutil.which("zstd") is None:
        return "the zstd command is needed to decompress the download: install it (apt-get install zstd)"
    probe = folder if folder.exists() else next(p for p in folder.parents if p.exists())
    free = shutil.disk_usage(probe).free
    if free < 2 * keyset.size:
        return f"{probe} has {free / 1e9:.1f} GB free; {keyset.file} needs {2 * keyset.size / 1e9:.1f} GB while it unpacks"
    return None
