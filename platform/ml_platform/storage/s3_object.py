"""One S3 object read as a binary file: sequential reads stream it, a seek starts a ranged GET.

The file readers look at bytes themselves (a CSV header, JSON's first character, Parquet's
markers at both ends, the line count every read is checked against) before and beside DuckDB's
own parse; on S3 they get this file object instead of `open(path, "rb")`. The object is read
as it was listed: a GET names the listed ETag (`IfMatch`), so an object overwritten meanwhile
fails the read (and is requested again by the next sensor tick) instead of mixing two versions.
"""

from __future__ import annotations

import io


class S3ObjectFile(io.RawIOBase):
    def __init__(self, client, bucket: str, key: str, size: int, etag: str | None = None):
        self._client, self._bucket, self._key, self._size, self._etag = client, bucket, key, size, etag
        self._position = 0
        self._body = None  # the streaming body of the current GET, positioned at self._position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(base + offset, 0)
        if position != self._position:
            self._drop_body()
            self._position = position
        return position

    def readinto(self, buffer) -> int:
        if self._position >= self._size:
            return 0
        if self._body is None:
            request = {"Bucket": self._bucket, "Key": self._key, "Range": f"bytes={self._position}-"}
            if self._etag:
                request["IfMatch"] = self._etag
            self._body = self._client.get_object(**request)["Body"]
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


def open_object(client, bucket: str, key: str, size: int, etag: str | None = None) -> io.BufferedReader:
    return io.BufferedReader(S3ObjectFile(client, bucket, key, size, etag), buffer_size=1 << 20)
