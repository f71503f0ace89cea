"""Reading recorded history: JSON Lines files, plain or gzip."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"


def read_lines(path: Path) -> Iterator[bytes]:
    """The non-blank lines of a JSON Lines file (plain or gzip), without line endings and
    without the UTF-8 byte-order mark some exports begin with; a damaged or cut gzip file
    raises OSError naming the file."""
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == _GZIP_MAGIC
    with gzip.open(path, "rb") if is_gzip else path.open("rb") as lines:
        try:
            for number, line in enumerate(lines):
                record = line.rstrip(b"\r\n")
                if number == 0:
                    record = record.removeprefix(_UTF8_BOM)
                if record.strip():
                    yield record
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise OSError(f"{path}: not a readable gzip file ({error})") from None


def lines_digest(lines: Iterable[bytes]) -> str:
    """SHA-256 of the lines as `read_lines` gives them, each ended by a newline: the same for a
    file plain or gzipped, with CRLF or LF endings."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line + b"\n")
    return digest.hexdigest()


def json_objects(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The lines that are JSON objects, decoded; the others are skipped (a dataset scan reads
    what it can and leaves judging bad lines to the replay, which dead-letters them)."""
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            yield doc
