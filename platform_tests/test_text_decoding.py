"""The streaming pass that makes a landed text file readable by DuckDB (`ingestion/files/text.py`),
on real files of several 1 MiB chunks: characters and lines cut by chunk ends, a valid file read
in place (no copy), a copy made only when needed and equal to the text, byte for byte, and lines
decoded with the fallback counted exactly."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
import zstandard

from ml_platform.ingestion.files.scan import UnreadableFile
from ml_platform.ingestion.files.text import CHUNK, read_text


class Landed:
    """A local landed file, as the readers see one."""

    def __init__(self, path: Path):
        self.path = path

    def open(self):
        return open(self.path, "rb")


def _read(tmp_path: Path, data: bytes, name: str = "landed", **kwargs):
    path = tmp_path / name
    path.write_bytes(data)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    args = dict(encoding="utf-8", fallback_encoding="windows-1252", work=work) | kwargs
    return path, read_text(Landed(path), str(path), **args)


def _multibyte_lines(size: int) -> str:
    """Lines of 1-, 2-, 3- and 4-byte characters, of uneven lengths, so chunk ends fall inside
    characters and lines alike."""
    alphabet, lines, n = "aé€😀", [], 0
    while n < size:
        line = "".join(alphabet[(n + i) % 4] for i in range(17 + n % 23))
        lines.append(line)
        n += len(line.encode()) + 1
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("compress", [None, gzip.compress, zstandard.ZstdCompressor().compress])
def test_a_valid_utf8_file_is_read_in_place_however_its_chunks_cut_it(tmp_path, compress):
    text = _multibyte_lines(3 * CHUNK + 1000)
    data = text.encode()
    path, read = _read(tmp_path, compress(data) if compress else data)
    assert (read.url, read.source is not None) == (str(path), True)  # no copy
    assert (read.lines, read.blank_lines, read.fallback_lines) == (text.count("\n"), 0, 0)
    assert read.compressed == (None if compress is None else "gzip" if compress is gzip.compress else "zstd")
    with read.open() as f:
        assert f.read() == data


def test_only_the_lines_that_are_not_utf8_are_decoded_with_the_fallback(tmp_path):
    text = _multibyte_lines(3 * CHUNK)
    lines = text.split("\n")
    # One Windows-1252 line where the first chunk ends, one in the middle, one last without a line end.
    at = len(text.encode()[:CHUNK].decode("utf-8", "ignore").split("\n")) - 1
    odd = {at: "naïve €5", at + 7000: "it’s", len(lines) - 1: "café"}
    data = b"\n".join(odd[i].encode("cp1252") if i in odd else line.encode() for i, line in enumerate(lines))
    path, read = _read(tmp_path, gzip.compress(data))
    assert read.url != str(path) and read.source is None  # a UTF-8 copy
    expected = "\n".join(odd.get(i, line) for i, line in enumerate(lines)).encode()
    assert Path(read.url).read_bytes() == expected
    assert (read.lines, read.fallback_lines, read.compressed, read.decoded_as) == (len(lines), 3, "gzip", "utf-8")

    # Without a fallback the file is read in place: DuckDB rejects those lines itself.
    path, strict = _read(tmp_path, data, fallback_encoding=None)
    assert (strict.url, strict.fallback_lines, strict.lines) == (str(path), 0, len(lines))


def test_windows_1252_maps_every_byte(tmp_path):
    data = bytes(range(0x20, 0x100)) + b"\n"
    _, read = _read(tmp_path, data)
    decoded = Path(read.url).read_text(encoding="utf-8")
    assert (read.fallback_lines, decoded[0x80 - 0x20], decoded[0x81 - 0x20], decoded[0x92 - 0x20]) == (
        1,
        "€",
        "\x81",
        "’",
    )
    _, latin = _read(tmp_path, data, fallback_encoding="latin-1")
    assert Path(latin.url).read_text(encoding="utf-8") == data.decode("latin-1")


@pytest.mark.parametrize(
    "encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-32-le", b"\xff\xfe\x00\x00")]
)
def test_utf16_and_utf32_are_transcoded_across_chunks(tmp_path, encoding, bom):
    text = _multibyte_lines(CHUNK).replace("\n", "\r\n")  # 😀 is a surrogate pair in UTF-16
    _, read = _read(tmp_path, bom + text.encode(encoding), encoding="utf-8")
    assert Path(read.url).read_bytes() == text.encode("utf-8")
    assert (read.decoded_as, read.lines, read.fallback_lines) == (encoding, text.count("\n"), 0)
    # Without a byte-order mark, the declared encoding holds.
    if encoding != "utf-32-le":
        _, declared = _read(tmp_path, text.encode(encoding), encoding=encoding)
        assert Path(declared.url).read_bytes() == text.encode("utf-8")


def test_an_invalid_utf16_code_unit_becomes_a_replacement_and_its_line_is_counted(tmp_path):
    good = "a,b\r\n" * 1000
    data = (
        b"\xff\xfe" + good.encode("utf-16-le") + "x,".encode("utf-16-le") + b"\x00\xd8" + ",y\r\n".encode("utf-16-le")
    )
    _, read = _read(tmp_path, data + good.encode("utf-16-le"))
    assert Path(read.url).read_bytes().decode() == good + "x,\ufffd,y\r\n" + good
    assert (read.lines, read.fallback_lines) == (2001, 1)


def test_a_line_longer_than_four_chunks_is_converted_in_pieces_between_characters(tmp_path):
    long_line = "é€" * (5 * CHUNK // 5) + "\n"
    data = long_line.encode() + "caf\xe9\n".encode("latin-1")
    _, read = _read(tmp_path, data)
    assert Path(read.url).read_text(encoding="utf-8") == long_line + "café\n"
    assert (read.lines, read.fallback_lines) == (2, 1)


def test_binary_data_is_refused_and_a_stray_control_character_is_not(tmp_path):
    rng = random.Random(5)
    for junk, reason in [
        (
            b"\x89PNG\r\n\x1a\n" + rng.randbytes(3000),
            "binary data, not text: a PNG image; land it with its real extension",
        ),
        (
            b"PK\x03\x04" + rng.randbytes(3000),
            "binary data, not text: a ZIP archive (a spreadsheet workbook?); land it with its real extension",
        ),
        (
            gzip.compress(rng.randbytes(3000)),
            "binary data, not text (control characters such as NUL): not a text file, land it as what it is",
        ),
        (
            "a,b\n1,2\n".encode("utf-16-le"),
            "UTF-16 text without a byte-order mark: declare the source's encoding as 'utf-16-le'",
        ),
    ]:
        with pytest.raises(UnreadableFile) as refused:
            _read(tmp_path, junk)
        assert refused.value.reason == reason
    _, text = _read(tmp_path, b"id,name\n" + b"1,ok\n" * 40 + b"2,nul\x00here\n")
    assert text.lines == 42


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_truncated_or_corrupt_archive_is_refused_with_the_reason(tmp_path, kind):
    data = "".join(f"{i},row\n" for i in range(20000)).encode()
    whole = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    with pytest.raises(UnreadableFile) as cut:
        _read(tmp_path, whole[: len(whole) // 2])
    assert cut.value.reason == f"truncated {kind} archive: the copy was cut short, land it again"
    broken = whole[:12] + bytes(b ^ 0x55 for b in whole[12:200]) + whole[200:]
    with pytest.raises(UnreadableFile) as corrupt:
        _read(tmp_path, broken)
    assert corrupt.value.reason == f"corrupt {kind} archive (or data after its end): re-export the file"
