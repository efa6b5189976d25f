"""The local blob store's metadata records: `meta/<key>.json` beside each object in `objects/<key>`.

A record keeps what a folder cannot: the content type, the etag (md5, or S3's multipart form) and
the sha256, with the inode, mtime and size of the one file version they describe. A record that
does not match the file (none yet, or written before a crash between the object's replace and the
record's) is not believed: the file is hashed again and the record rewritten. Apart from the store
so that the rules for trusting a record sit in one place."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mediaindex.adapters.local.fs_writes import Written, atomic_replace, hash_file
from mediaindex.ports.blobs import BlobInfo


class MetaRecords:
    def __init__(self, meta_dir: Path, tmp_dir: Path) -> None:
        self.root = meta_dir
        self._tmp = tmp_dir

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def write(self, key: str, path: Path, written: Written, content_type: str | None, etag: str) -> None:
        st = path.stat()
        doc = {
            "content_type": content_type,
            "etag": etag,
            "sha256": written.sha256,
            "size": st.st_size,
            # The inode and mtime tie this record to one version of the file: after a crash between
            # the object's replace and this write, a stale record is detected, not believed.
            "ino": st.st_ino,
            "mtime_ns": st.st_mtime_ns,
        }
        tmp = self._tmp / f"meta-{os.urandom(8).hex()}.json"
        tmp.write_text(json.dumps(doc))
        atomic_replace(tmp, self.path(key))

    def info(self, key: str, path: Path) -> BlobInfo | None:
        """The object at `path` as `key`, or None when there is no such file."""
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        try:
            doc = json.loads(self.path(key).read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            doc = {}
        if (doc.get("ino"), doc.get("mtime_ns"), doc.get("size")) != (st.st_ino, st.st_mtime_ns, st.st_size):
            # No record, or one of an older version: hash the file again (rare; after a crash).
            written = hash_file(path)
            self.write(key, path, written, None, written.md5)
            return BlobInfo(key, written.size, written.md5, None, written.sha256)
        return BlobInfo(key, st.st_size, doc["etag"], doc.get("content_type"), doc.get("sha256"))
