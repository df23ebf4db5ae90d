"""A landed text file (CSV, JSON Lines, JSON) as DuckDB will read it: decompressed, decoded, and
its lines counted, in one streaming pass over its bytes.

- **Compression**: gzip and zstd are told by the file's first bytes, whatever its name says (a
  `.csv` that is gzip is decompressed, a `.csv.gz` that is plain text is read as it is). A
  truncated or corrupt archive makes the file unreadable, with the reason.
- **Encoding**: a byte-order mark identifies UTF-8, UTF-16 and UTF-32 (LE or BE); without one the
  source's declared `encoding` holds. In a UTF-8 file, a line that is not valid UTF-8 is decoded
  with the source's `fallback_encoding` (Windows-1252 by default, which maps every byte) and kept;
  `fallback_lines` counts those lines. In UTF-16/32, an invalid code unit becomes U+FFFD and its
  line is counted the same way.
- **Binary data** (control characters such as NUL in more than 1% of the first 64 KiB) is refused
  as a whole: it is not text in any encoding.

What DuckDB reads (`TextFile.url`) is the landed file itself whenever DuckDB can decode it (valid
UTF-8, or Latin-1 for CSV; compressed or not: DuckDB decompresses gzip and zstd itself), so an
ordinary file costs only the counting pass it always had. Only a file DuckDB cannot read as it is
(UTF-16/32, Windows-1252, a line needing the fallback, a BOM or a compressed array for the JSON
reader) is transcoded, chunk by chunk, into a UTF-8 copy in the reader's work folder: memory stays
bounded (about two chunks and the longest line) whatever the file's size. Line breaks are kept
byte for byte, so line numbers and the line count are the landed file's.
"""

from __future__ import annotations

import codecs
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import zstandard

from ml_platform.ingestion.files.scan import Openable, UnreadableFile

CHUNK = 1 << 20
# Compressed bytes are fed in smaller pieces: one piece of a very repetitive file can expand a
# thousandfold, and the output of one piece is held at once.
COMPRESSED_PIECE = 1 << 16
# How much of the decompressed start is looked at for a byte-order mark and binary data.
HEAD = 1 << 16
# More control characters than this share of the head: binary data, not text.
MAX_CONTROL_SHARE = 0.01

GZIP, ZSTD = "gzip", "zstd"
MAGIC = {GZIP: b"\x1f\x8b", ZSTD: b"\x28\xb5\x2f\xfd"}
# Longest first: UTF-32 LE's mark starts with UTF-16 LE's.
BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
WIDE_ENCODINGS = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
# What other binary formats start with, to name them in the reason.
KNOWN_BINARY = (
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a ZIP archive (a spreadsheet workbook?)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
)
# C0 controls that no text file holds (tab, line feed, vertical tab, form feed, carriage return
# and escape are left out: text and terminal output do use them).
CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0E, 0x0F, *range(0x10, 0x1B), *range(0x1C, 0x20)])
_CONTROLS = re.compile("[" + re.escape(CONTROL_BYTES.decode("ascii")) + "]")
_BLANK_LINE = re.compile(rb"(?<=\n)\r?\n")

# WHATWG's windows-1252: cp1252 with its five undefined bytes mapped to the C1 controls of the
# same number, as browsers do, so every byte decodes (Python's cp1252 refuses those five).
_WINDOWS_1252 = "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(256))


def _decode_windows_1252(data: bytes) -> str:
    return codecs.charmap_decode(data, "strict", _WINDOWS_1252)[0]


# Single-byte decoders for a declared encoding or a fallback: each maps every byte.
SINGLE_BYTE: dict[str, Callable[[bytes], str]] = {
    "windows-1252": _decode_windows_1252,
    "latin-1": lambda data: data.decode("latin-1"),
}


@dataclass(frozen=True)
class TextFile:
    """What DuckDB reads for a landed text file, and what the pass over its bytes found."""

    url: str  # the landed file, or its transcoded copy
    compression: str  # for DuckDB: none, gzip or zstd
    encoding: str  # for DuckDB: utf-8 or latin-1
    lines: int  # of the decoded text, as the landed file has them
    blank_lines: int
    compressed: str | None  # the compression found in the landed file (gzip, zstd)
    decoded_as: str  # the encoding the landed file was read in
    fallback_lines: int = 0  # lines decoded with the source's fallback (or holding U+FFFD)
    source: Openable | None = None  # the landed file, when `url` is not a copy

    @property
    def nonblank_lines(self) -> int:
        return self.lines - self.blank_lines

    def open(self) -> BinaryIO:
        """The bytes DuckDB reads at `url`, decompressed."""
        if self.source is None:
            return open(self.url, "rb")
        if self.compressed is None:
            return self.source.open()
        return io.BufferedReader(_ChunkStream(_decompressed(self.source.open(), self.compressed)), CHUNK)

    def copy(self, path: Path, first_line: bytes | None = None) -> TextFile:
        """The same text as a plain file at `path`; with `first_line`, that line replaces the
        first one (a CSV header DuckDB would misread), so line numbers stay the same."""
        with self.open() as src, open(path, "wb") as dst:
            if first_line is not None:
                while (piece := src.readline(CHUNK)) and not piece.endswith(b"\n"):
                    pass
                dst.write(first_line)
            while chunk := src.read(CHUNK):
                dst.write(chunk)
        return replace(self, url=str(path), compression="none", source=None)


class _ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks, self._pending = chunks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            self._pending = memoryview(next(self._chunks, b""))
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close:
            close()  # the generator's own `finally` closes the landed file
        super().close()


def _compression(file: Openable) -> str | None:
    with file.open() as f:
        magic = f.read(4)
    return next((name for name, mark in MAGIC.items() if magic.startswith(mark)), None)


def _decompressed(raw: BinaryIO, compression: str | None) -> Iterator[bytes]:
    """The file's bytes, decompressed, in chunks; closes `raw`. Concatenated archives (several
    gzip members, several zstd frames) are read through, as gzip and zstd themselves do."""
    with raw:
        if compression is None:
            while chunk := raw.read(CHUNK):
                yield chunk
            return

        def start():
            return zlib.decompressobj(wbits=31) if compression == GZIP else zstandard.ZstdDecompressor().decompressobj()

        decompressor, inside = start(), False
        try:
            while piece := raw.read(COMPRESSED_PIECE):
                while piece:
                    out, inside = decompressor.decompress(piece), True
                    if out:
                        yield out
                    if decompressor.eof:  # the end of one member: another may follow
                        piece, decompressor, inside = decompressor.unused_data, start(), False
                    else:
                        piece = b""
        except (zlib.error, zstandard.ZstdError) as exc:
            raise UnreadableFile(
                f"corrupt {compression} archive (or data after its end): re-export the file", str(exc)
            ) from exc
        if inside:
            raise UnreadableFile(f"truncated {compression} archive: the copy was cut short, land it again")


class _LineCounter:
    """Lines and empty lines of bytes fed in chunks: LF or CRLF ends, an unterminated last line
    counts, and a line that is only CR or nothing is empty."""

    def __init__(self):
        self.newlines = self.blank = 0
        self._tail, self._last = b"\n", b""  # the start behaves like the end of a line

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        data = self._tail + chunk
        if b"\n\n" in data or b"\n\r\n" in data:
            self.blank += sum(1 for m in _BLANK_LINE.finditer(data) if m.end() > len(self._tail))
        self.newlines += chunk.count(b"\n")
        self._tail, self._last = data[-2:], chunk[-1:]

    @property
    def lines(self) -> int:
        return self.newlines + (1 if self._last and self._last != b"\n" else 0)


def _head(file: Openable, compression: str | None) -> bytes:
    chunks, size = [], 0
    stream = _decompressed(file.open(), compression)
    try:
        for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size >= HEAD:
                break
    finally:
        stream.close()
    return b"".join(chunks)


def _refuse_binary(head: bytes, encoding: str, bom: bytes) -> None:
    """UnreadableFile when the head is binary data rather than text in `encoding`."""
    if encoding in WIDE_ENCODINGS:
        text = head[len(bom) :].decode(encoding, "replace")
        controls, size = len(_CONTROLS.findall(text)), len(text)
    else:
        controls, size = len(head) - len(head.translate(None, CONTROL_BYTES)), len(head)
    if not size or controls <= MAX_CONTROL_SHARE * size:
        return
    for magic, what in KNOWN_BINARY:
        if head.startswith(magic):
            raise UnreadableFile(f"binary data, not text: {what}; land it with its real extension")
    even, odd = head[0:HEAD:2].count(0), head[1:HEAD:2].count(0)
    if encoding not in WIDE_ENCODINGS and max(even, odd) > 0.3 * len(head) / 2:
        order = "le" if odd > even else "be"
        raise UnreadableFile(
            f"UTF-16 text without a byte-order mark: declare the source's encoding as 'utf-16-{order}'"
        )
    raise UnreadableFile(
        "binary data, not text (control characters such as NUL): not a text file, land it as what it is"
    )


def _encoding(head: bytes, declared: str) -> tuple[str, bytes]:
    """The file's encoding and its byte-order mark (b'' without one)."""
    for mark, encoding in BOMS:
        if head.startswith(mark):
            return encoding, mark
    if declared == "utf-16":  # without a mark: little-endian, what Windows writes
        return "utf-16-le", b""
    return declared, b""


def _counted(file: Openable, compression: str | None, validate_utf8: bool) -> _LineCounter | None:
    """The counting pass over a file DuckDB reads as it is; None when `validate_utf8` finds a
    line that is not UTF-8 (the file needs the fallback). ASCII chunks skip the UTF-8 check."""
    counter = _LineCounter()
    decoder = codecs.getincrementaldecoder("utf-8")() if validate_utf8 else None
    stream = _decompressed(file.open(), compression)
    try:
        for chunk in stream:
            counter.feed(chunk)
            if decoder is not None and (not chunk.isascii() or decoder.getstate()[0]):
                decoder.decode(chunk)
        if decoder is not None:
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    finally:
        stream.close()
    return counter


def read_text(
    file: Openable,
    url: str,
    *,
    encoding: str,
    fallback_encoding: str | None,
    work: Path,
    duckdb_encodings: tuple[str, ...] = ("utf-8", "latin-1"),
    mark_ok: bool = True,
) -> TextFile:
    """`file` (at `url` for DuckDB) made readable by DuckDB, with its counts.

    `duckdb_encodings`: what the DuckDB reader decodes itself (CSV: UTF-8 and Latin-1; JSON: UTF-8
    only). `mark_ok`: whether it skips a UTF-8 byte-order mark (CSV does, JSON does not).
    Raises UnreadableFile for a truncated or corrupt archive and for binary data."""
    compressed = _compression(file)
    head = _head(file, compressed)
    found, mark = _encoding(head, encoding)
    _refuse_binary(head, found, mark)
    if found in duckdb_encodings and (mark_ok or not mark):
        counter = _counted(file, compressed, validate_utf8=found == "utf-8" and fallback_encoding is not None)
        if counter is not None:
            return TextFile(
                url, compressed or "none", found, counter.lines, counter.blank, compressed, found, source=file
            )
    return _transcoded(file, compressed, found, mark, fallback_encoding, work / "text.utf-8")


def _transcoded(
    file: Openable, compression: str | None, encoding: str, mark: bytes, fallback: str | None, path: Path
) -> TextFile:
    """The file as UTF-8 without a byte-order mark at `path`, line by line where it must be.

    Whole chunks of complete lines are converted at once; only a chunk that does not decode is
    split into lines, each decoded on its own (with the fallback when it is not valid)."""
    counter, fallback_lines = _LineCounter(), 0
    if encoding in WIDE_ENCODINGS:
        convert = _wide_converter(encoding)
    elif encoding == "utf-8":
        convert = _utf8_converter(fallback)
    else:
        convert = _single_byte_converter(SINGLE_BYTE[encoding])
    rest, first = b"", True
    with open(path, "wb") as out:

        def emit(block: bytes) -> None:
            nonlocal fallback_lines
            converted, fell_back = convert(block)
            out.write(converted)
            counter.feed(converted)
            fallback_lines += fell_back

        for chunk in _decompressed(file.open(), compression):
            if first:
                chunk, first = chunk[len(mark) :] if chunk.startswith(mark) else chunk, False
            data = rest + chunk
            # Wide encodings are converted as they come (the converter keeps their partial
            # characters); byte encodings at line ends, so a line is decoded whole.
            cut = len(data) if encoding in WIDE_ENCODINGS else data.rfind(b"\n") + 1
            if cut == 0 and len(data) > 4 * CHUNK:
                # A line this long is held no longer: converted in pieces cut between characters
                # (a piece of an invalid line may then be counted once more).
                cut = _character_start(data, len(data) - 1) if encoding == "utf-8" else len(data)
            rest = data[cut:]
            emit(data[:cut])
        emit(rest)
        if encoding in WIDE_ENCODINGS:
            emit(None)
    return TextFile(str(path), "none", "utf-8", counter.lines, counter.blank, compression, encoding, fallback_lines)


def _character_start(data: bytes, end: int) -> int:
    """The start of the UTF-8 character holding byte `end` (continuation bytes are 10xxxxxx)."""
    start = end
    while start > max(end - 3, 0) and 0x80 <= data[start] < 0xC0:
        start -= 1
    return start or len(data)


def _single_byte_converter(decode: Callable[[bytes], str]) -> Callable[[bytes], tuple[bytes, int]]:
    def convert(block: bytes) -> tuple[bytes, int]:
        return (block if block.isascii() else decode(block).encode("utf-8")), 0

    return convert


def _utf8_converter(fallback: str | None) -> Callable[[bytes], tuple[bytes, int]]:
    decode_fallback = SINGLE_BYTE[fallback] if fallback else None

    def convert(block: bytes) -> tuple[bytes, int]:
        try:
            if not block.isascii():
                block.decode("utf-8")
            return block, 0
        except UnicodeDecodeError:
            if decode_fallback is None:  # kept as it is: DuckDB rejects the line, with the reason
                return block, 0
        lines, fell_back = block.split(b"\n"), 0
        for i, line in enumerate(lines):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                lines[i] = decode_fallback(line).encode("utf-8")
                fell_back += 1
        return b"\n".join(lines), fell_back

    return convert


def _wide_converter(encoding: str) -> Callable[[bytes | None], tuple[bytes, int]]:
    """UTF-16/32 to UTF-8. An invalid code unit becomes U+FFFD; from the first one on, lines
    holding U+FFFD are counted as decoded with the fallback (one also holding a genuine U+FFFD
    would be counted too). A line split across chunks is counted where it ends."""
    decoder = codecs.getincrementaldecoder(encoding)()
    state = {"invalid": False, "rest": ""}

    def convert(block: bytes | None) -> tuple[bytes, int]:
        # None is the end: partial characters left there are invalid.
        text = _decode(b"", final=True) if block is None else _decode(block, final=False)
        text, fell_back = state["rest"] + text, 0
        if state["invalid"]:
            cut = len(text) if block is None else text.rfind("\n") + 1
            fell_back = sum(1 for line in text[:cut].split("\n") if "\ufffd" in line)
            state["rest"], text = text[cut:], text[:cut]
        return text.encode("utf-8"), fell_back

    def _decode(data: bytes, final: bool) -> str:
        before = decoder.getstate()
        try:
            return decoder.decode(data, final)
        except UnicodeDecodeError:
            decoder.setstate(before)
            decoder.errors, state["invalid"] = "replace", True
            try:
                return decoder.decode(data, final)
            finally:
                decoder.errors = "strict"

    return convert
