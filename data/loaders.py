"""Read a private table from a file or from uploaded bytes (.csv, .parquet, .xlsx) into pandas.

Only reading happens here; validation and encoding under the public schema are in `data.prepare`,
and a schema *proposal* read off the data is in `data.propose` (owner only, unconfirmed).

    frame = load_table("cohort.csv")                                  # path
    frame, report = load_table_with_report(raw_bytes, filename="cohort.csv")   # upload
    report.lines()        # ["Read 1,204 rows × 9 columns from cohort.csv (separator ';' detected ...)", ...]

CSV is parsed by pyarrow's multi-threaded CSV reader. The file is not walked a second time in
Python: the separator and header are read from a small sample (the first 64 KiB), the encoding is
checked in C (ASCII test, then UTF-8 decoding in chunks), and ragged lines, unclosed quotes and
other parse problems come from the reader's own errors, turned into the messages below. Text
columns with few distinct values are read as pandas categoricals (typed once, like a Parquet file
written from categoricals); ISO dates (2024-01-31) and times are read as datetimes.

Parquet is read by pyarrow with the file's pandas metadata (what `pandas.read_parquet` gives), from
the bytes or, for a path of 1 MiB or more, the memory-mapped file. For both formats each dictionary
column is concatenated into one chunk before the conversion to pandas (the same categories in the
same order, without pyarrow's per-value recoding of many chunks).

Every problem raises a `LoadError` (a `ValueError`, and a `data.prepare.DataValidationError`) subclass
with a one-line, human message naming the file and, where it helps, the line, column or byte:

    UnsupportedFormatError  extension not .csv/.parquet/.xlsx, or content of another format
    FileTooLargeError       above `max_bytes` (checked before anything is parsed)
    EmptyFileError          0 bytes, no columns, or a header and no data rows
    EncodingError           text not valid in the declared encoding (or UTF-8): byte offset + line
    DelimiterError          several separators appear in the header and none fits every line
    MalformedCSVError       a line with more or fewer values than the header (line number given)
    HeaderError             duplicate, empty or control-character column names
    PathNotAllowedError     a path outside the allowed data folder (`root=`), symlinks resolved
    UnreadableFileError     missing file, broken Parquet/Excel content

File size: `max_bytes=None` (the default) reads any size the machine can hold. The app's upload
limit is Streamlit's `server.maxUploadSize` (MB; `.streamlit/config.toml`, `--server.maxUploadSize`
or STREAMLIT_SERVER_MAX_UPLOAD_SIZE), also in `DEFAULT_MAX_BYTES` / `upload_limit_bytes()`; the
CLIs take `--max-file-mb`. Large cohorts are better read from a path or a Parquet file than uploaded.

Soft problems (all-null columns, dropped empty rows, a detected separator, extra sheets) are
warnings in the returned `LoadReport`; they are about private data and for the data owner only.
"""
from __future__ import annotations

import codecs
import csv
import io
import mmap
import os
import re
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.prepare import DataValidationError

SUFFIXES = (".csv", ".parquet", ".xlsx")
STREAMLIT_DEFAULT_UPLOAD_MB = 200                # Streamlit's own default for server.maxUploadSize
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma ','", ";": "semicolon ';'", "\t": "tab", "|": "pipe '|'"}
_SNIFF_CHARS = 64 * 1024
_MAGIC = {b"PAR1": "a Parquet file", b"PK\x03\x04": "an Excel (.xlsx) or other zip file",
          b"\xd0\xcf\x11\xe0": "an old-style Excel (.xls) or password-protected Office file"}
# What pandas.read_csv reads as missing (its default na_values) and as booleans: kept for pyarrow.
NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
             "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
TRUE_VALUES, FALSE_VALUES = ("True", "TRUE", "true"), ("False", "FALSE", "false")
CSV_BLOCK_BYTES = 4 << 20          # pyarrow's unit of parallel work; a row may not be longer than this
DICT_MAX_CARDINALITY = 1000        # text columns with at most this many values per block -> categorical
_UTF8_CHUNK = 16 << 20
MMAP_MIN_BYTES = 1 << 20        # a CSV or Parquet path at least this big is memory-mapped, not copied into memory

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))   # long free-text cells are legal (sample parsing)


def upload_limit_bytes() -> int:
    """The app's upload limit in bytes: Streamlit's `server.maxUploadSize` (MB).

    Read from Streamlit's own configuration when Streamlit is running (config files, command-line
    flags and STREAMLIT_* variables), else from STREAMLIT_SERVER_MAX_UPLOAD_SIZE or the
    `[server] maxUploadSize` key of `.streamlit/config.toml` (working folder, then home folder),
    else Streamlit's default of 200 MB."""
    mb: Any = None
    if "streamlit" in sys.modules:
        try:
            from streamlit import config as st_config
            mb = st_config.get_option("server.maxUploadSize")
        except Exception:                          # noqa: BLE001  (an odd Streamlit: use the files)
            mb = None
    if mb is None:
        mb = os.environ.get("STREAMLIT_SERVER_MAX_UPLOAD_SIZE") or None
    if mb is None:
        for base in (Path.cwd(), Path.home()):
            try:
                with open(base / ".streamlit" / "config.toml", "rb") as fh:
                    mb = tomllib.load(fh).get("server", {}).get("maxUploadSize")
            except (OSError, tomllib.TOMLDecodeError, AttributeError):
                mb = None
            if mb is not None:
                break
    try:
        mb = int(mb)
    except (TypeError, ValueError):
        mb = STREAMLIT_DEFAULT_UPLOAD_MB
    return max(1, mb) * 1024 * 1024


DEFAULT_MAX_BYTES = upload_limit_bytes()     # the app's upload limit (server.maxUploadSize), at import


# ------------------------------------------------------------------------------------- errors
class LoadError(DataValidationError):
    """The file cannot be read as a table. A ValueError; the message is one line for the data owner.

    Unlike prepare()'s errors its message describes the file (line numbers, sizes) to whoever supplied
    it; `owner_detail` is the same text. Analyst views show no data error's text (dashboard/app.py)."""


class UnsupportedFormatError(LoadError):
    pass


class FileTooLargeError(LoadError):
    pass


class EmptyFileError(LoadError):
    pass


class EncodingError(LoadError):
    pass


class DelimiterError(LoadError):
    pass


class MalformedCSVError(LoadError):
    pass


class HeaderError(LoadError):
    pass


class PathNotAllowedError(LoadError):
    pass


class UnreadableFileError(LoadError):
    pass


# ------------------------------------------------------------------------------------- report
@dataclass
class LoadReport:
    """How the file was read. Owner-only: the counts come from private data."""

    source: str
    format: str = ""                       # "csv", "parquet" or "xlsx"
    size_bytes: int = 0
    rows: int = 0
    columns: int = 0
    encoding: str | None = None            # CSV only
    delimiter: str | None = None           # CSV only
    delimiter_detected: bool = False       # True when the separator was detected, not given
    sheet: str | None = None               # Excel only
    all_null_columns: list[str] = field(default_factory=list)
    empty_rows_dropped: int = 0
    warnings: list[str] = field(default_factory=list)
    null_counts: list[int] | None = field(default=None, repr=False, compare=False)   # reader's, per column

    def summary(self) -> str:
        how = []
        if self.format == "csv":
            sep = DELIMITER_NAMES.get(self.delimiter or ",", repr(self.delimiter))
            how.append(f"separator {sep} {'detected' if self.delimiter_detected else 'as given'}")
            how.append(f"encoding {self.encoding}")
        if self.sheet is not None:
            how.append(f"sheet '{self.sheet}'")
        tail = f" ({', '.join(how)})" if how else ""
        return f"Read {_n(self.rows, 'row')} × {_n(self.columns, 'column')} from {self.source}{tail}"

    def lines(self) -> list[str]:
        return [self.summary(), *self.warnings]


def _n(k: int, word: str) -> str:
    return f"{k:,} {word}{'' if k == 1 else 's'}"


# ------------------------------------------------------------------------------------- public API
def load_table(path_or_bytes: Any, *, filename: str | None = None, encoding: str | None = None,
               max_bytes: int | None = None, delimiter: str | None = None,
               root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The table in a path, bytes or a binary file object (.csv, .parquet or .xlsx).

    Raises a `LoadError` subclass with a specific message; see `load_table_with_report`.
    """
    return load_table_with_report(path_or_bytes, filename=filename, encoding=encoding,
                                  max_bytes=max_bytes, delimiter=delimiter, root=root)[0]


def load_table_with_report(path_or_bytes: Any, *, filename: str | None = None,
                           encoding: str | None = None, max_bytes: int | None = None,
                           delimiter: str | None = None, root: str | os.PathLike | None = None
                           ) -> tuple[pd.DataFrame, LoadReport]:
    """(frame, LoadReport) for a path, raw bytes, or a binary file object (e.g. a Streamlit upload).

    - The format comes from the extension of `filename` (or of the path / the file object's name);
      bytes without any name are recognised by their content (Parquet, xlsx, else CSV).
    - `max_bytes` (None: no limit) is checked before anything is parsed; the app passes its upload
      limit (`DEFAULT_MAX_BYTES`, Streamlit's server.maxUploadSize).
    - CSV: `encoding` is tried as declared (default UTF-8, with or without BOM; a UTF-16 BOM is
      honoured); `delimiter` (',', ';', tab or '|'; 'tab' and '\\t' accepted) or, when None,
      detected with csv.Sniffer over those four on the first 64 KiB; the reader checks every line.
    - `root`: when given, a path must resolve (symlinks followed) inside this folder; relative
      paths are taken relative to it.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")
    data, name = _read_source(path_or_bytes, filename, max_bytes, root)
    suffix = Path(name).suffix.lower() if name else ""
    shown = name or "the uploaded data"
    if not name:
        suffix = _suffix_from_content(data)
    _check_suffix(shown, suffix)
    report = LoadReport(source=shown, format=suffix.lstrip("."), size_bytes=len(data))
    if len(data) == 0:
        raise EmptyFileError(f"{shown} is empty (0 bytes)")
    if suffix == ".csv":
        held = [data]                  # the reader drops the file's bytes once parsed (peak memory)
        del data
        frame = _read_csv(held, shown, encoding, delimiter, report)
    elif suffix == ".parquet":
        frame = _read_parquet(data, shown, report)
    else:
        frame = _read_excel(data, shown, report)
    frame = _finish(frame, shown, report)
    return frame, report


# ------------------------------------------------------------------------------------- sources
def _fmt_bytes(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _too_big(name: str, size: int | None, max_bytes: int | None) -> None:
    if max_bytes is not None and size is not None and size > max_bytes:
        raise FileTooLargeError(f"{name} is {_fmt_bytes(size)}; the limit is {_fmt_bytes(max_bytes)}. "
                                "Raise the limit (--max-file-mb on the command line, server.maxUploadSize "
                                "for uploads), split the file, or save it as Parquet (several times smaller)")


def _read_source(src: Any, filename: str | None, max_bytes: int | None, root) -> tuple[bytes, str]:
    if isinstance(src, (bytes, bytearray, memoryview)):
        name = filename or ""
        _too_big(name or "the uploaded data", len(src), max_bytes)
        return bytes(src), name
    if isinstance(src, (str, os.PathLike)):
        p = _allowed_path(Path(src), root)
        name = filename or p.name
        _check_suffix(name, Path(name).suffix.lower())     # before touching the file system
        if not p.exists():
            raise UnreadableFileError(f"data file not found: {src}")
        if not p.is_file():
            raise UnreadableFileError(f"{src} is a folder, not a data file")
        size = p.stat().st_size
        _too_big(name, size, max_bytes)
        try:
            if size and size >= MMAP_MIN_BYTES and Path(name).suffix.lower() in (".csv", ".parquet"):
                return _map_file(p), name
            return p.read_bytes(), name
        except OSError as e:
            raise UnreadableFileError(f"cannot open {name}: {e.strerror or e}") from None
    if hasattr(src, "read"):                              # file object, e.g. st.file_uploader's
        name = filename or Path(str(getattr(src, "name", "") or "")).name
        size = getattr(src, "size", None)
        _too_big(name or "the uploaded data", size if isinstance(size, int) else None, max_bytes)
        if hasattr(src, "seek"):
            try:
                src.seek(0)
            except (OSError, ValueError):
                pass
        data = src.read() if max_bytes is None else src.read(max_bytes + 1)
        if isinstance(data, str):
            raise TypeError("open the file in binary mode ('rb')")
        _too_big(name or "the uploaded data", len(data), max_bytes)
        return bytes(data), name
    raise TypeError(f"load_table needs a path, bytes or a binary file object, got {type(src).__name__}")


def _map_file(p: Path) -> mmap.mmap:
    """The file's pages, mapped read-only (MAP_POPULATE: in one call, not one fault per page): the
    reader parses the page cache in place, so a big CSV is not copied into fresh memory first
    (about 0.08 s and the file's size in RAM at 10^6 rows). Bytes methods that mmap lacks
    (startswith, count, ...) are only used on slices or on error paths (`_as_bytes`)."""
    with open(p, "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0),
                         prot=mmap.PROT_READ)


def _as_bytes(buf) -> bytes:
    """`buf` as bytes: itself, or a copy of a memory-mapped file (error paths only)."""
    return buf if isinstance(buf, bytes) else bytes(buf)


def _allowed_path(p: Path, root) -> Path:
    if root is None:
        return p
    base = Path(root).resolve()
    full = (p if p.is_absolute() else base / p).resolve()      # follows symlinks, folds '..'
    if full != base and base not in full.parents:
        raise PathNotAllowedError(f"'{p}' is outside the allowed data folder; "
                                  "choose a file inside it (links and '..' leading out are refused)")
    return full


def _check_suffix(name: str, suffix: str) -> None:
    if suffix in SUFFIXES:
        return
    if suffix == ".xls":
        raise UnsupportedFormatError(f"cannot read {name}: old Excel .xls files are not supported; "
                                     "save it as .xlsx (Excel Workbook) or CSV")
    what = f"'{suffix}' files are not supported" if suffix else "the file name has no extension"
    raise UnsupportedFormatError(f"cannot read {name}: {what}; use .csv, .parquet or .xlsx")


def _suffix_from_content(data: bytes) -> str:
    if data[:4] == b"PAR1":
        return ".parquet"
    if data[:4] == b"PK\x03\x04":
        return ".xlsx"
    return ".csv"


# ------------------------------------------------------------------------------------- CSV
def _utf8_error(buf: bytes, start: int) -> int | None:
    """Offset of the first byte of `buf[start:]` that is not valid UTF-8, or None. C speed, no copy
    of the whole text: an ASCII test, else UTF-8 decoding in chunks cut between characters."""
    if isinstance(buf, bytes) and buf.isascii():
        return None
    if not isinstance(buf, bytes) and _ascii_only(buf):
        return None
    mv, n, pos = memoryview(buf), len(buf), start
    while pos < n:
        end = min(pos + _UTF8_CHUNK, n)
        for _ in range(3):                       # never cut inside a character
            if end < n and end > pos and (buf[end] & 0xC0) == 0x80:
                end -= 1
        try:
            codecs.utf_8_decode(mv[pos:end], "strict", True)
        except UnicodeDecodeError as e:
            return pos + e.start
        pos = end
    return None


def _ascii_only(buf, chunk: int = 16 << 20) -> bool:
    """No byte above 0x7F in a memory-mapped file (NumPy's max over chunks, no copy)."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    return all(int(arr[s:s + chunk].max(initial=0)) < 0x80 for s in range(0, len(arr), chunk))


def _encoding_error(data: bytes, offset: int, name: str, encoding: str | None, shown_enc: str) -> EncodingError:
    data = _as_bytes(data)
    line = data.count(b"\n", 0, offset) + 1
    byte = data[offset:offset + 1].hex().upper()
    if encoding is None:
        return EncodingError(
            f"{name} is not valid UTF-8: byte 0x{byte} at offset {offset:,} (line {line}) cannot be "
            "decoded. Save the file as UTF-8, or choose the encoding it was saved in (for example "
            "latin-1 or cp1252) and load it again")
    return EncodingError(
        f"{name} is not valid {shown_enc}: byte 0x{byte} at offset {offset:,} (line {line}) cannot "
        "be decoded. Choose another encoding (for example utf-8, latin-1 or cp1252)")


_NUL_MESSAGE = ("{name} contains NUL characters: it is a binary file, or UTF-16 text without a byte-order "
                "mark (choose encoding utf-16), not a CSV text file")


def _utf8(data: bytes, name: str, encoding: str | None, report: LoadReport) -> tuple[bytes, int]:
    """(UTF-8 bytes, offset where the text starts): `data` itself (after a BOM) when it is UTF-8,
    else the text decoded from the declared encoding (or a UTF-16 BOM) and written as UTF-8."""
    head = bytes(data[:8])
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedFormatError(f"{name} is not a CSV text file: it looks like {what}. "
                                         "Use the matching extension (.parquet or .xlsx) or export it as CSV")
    if encoding is not None and not str(encoding).strip():
        encoding = None
    if encoding is None:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            enc, shown_enc = "utf-16", "UTF-16"
        else:
            enc, shown_enc = "utf-8", "UTF-8"
    else:
        try:
            enc = codecs.lookup(str(encoding)).name
        except LookupError:
            raise EncodingError(f"unknown text encoding '{encoding}'; try utf-8, latin-1 or cp1252") from None
        shown_enc = str(encoding)
        if enc == "utf-8-sig":
            enc = "utf-8"
    if enc == "utf-8":                             # the usual case: no decoding, no copy
        start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        bad = _utf8_error(data, start)
        if bad is not None:
            raise _encoding_error(data, bad, name, encoding, shown_enc)
        if data.find(b"\x00", 0) >= 0:          # from 0: a mapped file's find starts at its position
            raise EncodingError(_NUL_MESSAGE.format(name=name))
        report.encoding = shown_enc
        return data, start
    try:
        text = _as_bytes(data).decode(enc)
    except UnicodeDecodeError as e:
        raise _encoding_error(data, e.start, name, encoding, shown_enc) from None
    if "\x00" in text:
        raise EncodingError(_NUL_MESSAGE.format(name=name))
    report.encoding = shown_enc
    out = text.encode("utf-8")
    start = 3 if text.startswith("\ufeff") else 0
    return out, start


def _normalise_delimiter(d: str) -> str:
    d = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(str(d).lower(), str(d))
    if len(d) != 1 or d in "\r\n\"" or d.isalnum():
        raise DelimiterError(f"the column separator must be one character such as ',' ';' tab or '|', got {d!r}")
    return d


def _blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def _records(text: str, delim: str):
    """(physical line number, fields) of each non-blank record (sample text only)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quotechar='"', doublequote=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise MalformedCSVError(f"line {reader.line_num + 1}: {e}") from None
        if not _blank(row):
            yield reader.line_num, row


def _shape(text: str, delim: str, max_records: int | None = None) -> tuple[int, int, tuple[int, int, list[str]] | None]:
    """(header line, header width, first bad record (line, width, fields) or None)."""
    header_line, width, n = 0, 0, 0
    for line, row in _records(text, delim):
        if not width:
            header_line, width = line, len(row)
            continue
        if len(row) != width:
            return header_line, width, (line, len(row), row)
        n += 1
        if max_records is not None and n >= max_records:
            break
    return header_line, width, None


def _head(buf: bytes, start: int) -> tuple[str, bool]:
    """The sample: the text's first `_SNIFF_CHARS` characters, cut after a line (truncated=True),
    or the whole text when it is that short."""
    chunk = buf[start:start + 4 * _SNIFF_CHARS]
    complete = start + len(chunk) >= len(buf)
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(chunk, final=complete)
    if complete and len(text) <= _SNIFF_CHARS:
        return text, False
    cut = text.rfind("\n", 0, _SNIFF_CHARS)
    return (text[:cut] if cut > 0 else text[:_SNIFF_CHARS]), True


def _choose_delimiter(sample: str, truncated: bool, name: str, report: LoadReport) -> str:
    widths: dict[str, int] = {}
    fits: list[str] = []
    for d in DELIMITERS:
        if d not in sample:                  # one value per line: no need to parse
            widths[d] = 1
            continue
        try:
            _, width, bad = _shape(sample, d)
        except MalformedCSVError:
            continue
        widths[d] = width
        if width >= 2 and (bad is None or (truncated and bad[0] >= sample.count("\n"))):
            fits.append(d)
    report.delimiter_detected = True
    if len(fits) == 1:                       # the usual case: the sniffer could only agree
        return fits[0]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in fits:
        return sniffed
    if fits:
        return max(fits, key=lambda d: widths[d])
    splitting = [d for d in DELIMITERS if widths.get(d, 0) >= 2]
    if not splitting:
        report.warnings.append("No separator (',' ';' tab '|') found in the first line: the file was read "
                               "as a single column")
        return ","
    if len(splitting) == 1:
        return splitting[0]          # the one candidate: the reader names the bad line
    names = ", ".join(DELIMITER_NAMES[d] for d in splitting[:-1]) + " and " + DELIMITER_NAMES[splitting[-1]]
    raise DelimiterError(f"{name}: cannot tell which character separates the columns: {names} all split the "
                         "first line, but none gives the same number of values on every line. Choose the "
                         "separator under the reading options, or fix the file")


def _check_given_delimiter(delim: str, sample: str, name: str) -> None:
    if _shape(sample, delim, max_records=1)[1] >= 2:
        return
    better = []
    for d in DELIMITERS:
        try:
            _, w, b = _shape(sample, d, max_records=50)
        except MalformedCSVError:
            continue
        if d != delim and w >= 2 and b is None:
            better.append(d)
    if better:
        raise DelimiterError(
            f"{name}: the separator {DELIMITER_NAMES.get(delim, repr(delim))} does not occur in the "
            f"first line, which splits cleanly on {DELIMITER_NAMES[better[0]]}; choose that separator "
            "or 'auto'")


def _breaks(buf: bytes, lo: int = 0, hi: int | None = None) -> int:
    """Line breaks (\\n, \\r or \\r\\n, as the csv module counts lines) in buf[lo:hi]."""
    hi = len(buf) if hi is None else hi
    if not isinstance(buf, bytes):
        buf, lo, hi = bytes(buf[lo:hi]), 0, hi - lo
    n, r = buf.count(b"\n", lo, hi), buf.count(b"\r", lo, hi)
    return n + r - (buf.count(b"\r\n", lo, hi) if r else 0)


def _eol(buf: bytes, i: int) -> bool:
    return i >= len(buf) or buf[i] in (10, 13)


def _row_position(buf: bytes, start: int, row: bytes) -> int | None:
    """Offset of the first line of buf[start:] that is exactly `row` (C searches only)."""
    found = []
    if buf.startswith(row, start) and _eol(buf, start + len(row)):
        found.append(start)
    for pre in (b"\n", b"\r"):
        for suf in (b"\n", b"\r"):
            i = buf.find(pre + row + suf, max(start - 1, 0))
            if i >= 0:
                found.append(i + 1)
        if buf.endswith(pre + row) and len(buf) - len(row) > start:
            found.append(len(buf) - len(row))
    return min(found) if found else None


class _Ragged:
    """pyarrow's invalid-row handler: blank lines (spaces only) are skipped, as the csv module
    does; the first line with another number of values stops the reader and is kept."""

    def __init__(self):
        self.rows: list[Any] = []

    def __call__(self, row) -> str:
        if not row.text.strip():
            return "skip"
        if row.actual_columns == 1:                # e.g. '""': one empty value is a blank line too
            fields = next(csv.reader(io.StringIO(row.text, newline=""), quotechar='"'), [])
            if _blank(fields):
                return "skip"
        self.rows.append(row)
        return "error"


_POOL: list = []


def _arrow_pool():
    """pyarrow's jemalloc pool where it is built in: for a table read once into fresh memory it costs
    a fifth of the system CPU time of pyarrow's default (mimalloc) here (0.2 s instead of 1 s of
    kernel time at 10^6 rows, measured); else the default pool."""
    if not _POOL:
        import pyarrow as pa
        try:
            _POOL.append(pa.jemalloc_memory_pool())
        except (NotImplementedError, AttributeError, pa.ArrowException):
            _POOL.append(pa.default_memory_pool())
    return _POOL[0]


def _one_dictionary_chunk(table, pool=None):
    """`table` with each dictionary column (pandas categorical to be) in one chunk: pyarrow's pandas
    conversion of a dictionary column in many chunks unifies their dictionaries and recodes value
    by value (about 3 ms per column at 10^6 rows); concatenating the chunks first does the same
    unification in Arrow's kernel (a tenth of that) and the conversion then takes the codes as they
    are. Same categories, same order, same codes; a column whose chunks cannot be concatenated
    (e.g. more than 2 GB of dictionary text) is left as it is."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        col = table.column(i)
        if pa.types.is_dictionary(f.type) and col.num_chunks > 1:
            try:
                one = col.combine_chunks(memory_pool=pool) if pool is not None else col.combine_chunks()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowCapacityError):
                continue
            table = table.set_column(i, f, pa.chunked_array([one], type=f.type))
    return table


def _arrow_read(buf: bytes, start: int, delim: str, quotes: int, handler, threads: bool = True,
                block: int | None = None, **convert):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    block = CSV_BLOCK_BYTES if block is None else block

    src = pa.BufferReader(pa.py_buffer(buf).slice(start))          # no copy
    read = pacsv.ReadOptions(use_threads=threads, block_size=block)
    parse = pacsv.ParseOptions(delimiter=delim, quote_char='"' if quotes else False, double_quote=True,
                               escape_char=False, newlines_in_values=quotes == QUOTES, ignore_empty_lines=True,
                               invalid_row_handler=handler)
    conv = pacsv.ConvertOptions(null_values=list(NA_VALUES), true_values=list(TRUE_VALUES),
                                false_values=list(FALSE_VALUES), strings_can_be_null=True,
                                quoted_strings_can_be_null=True, **convert)
    return pacsv.read_csv(src, read_options=read, parse_options=parse, convert_options=conv,
                          memory_pool=_arrow_pool())


def _parse(buf: bytes, start: int, delim: str, quotes: int, handler, **convert):
    """pyarrow's table; a row longer than a block is retried once with one block for the file."""
    import pyarrow as pa

    try:
        return _arrow_read(buf, start, delim, quotes, handler, **convert)
    except pa.ArrowInvalid as e:
        if "straddle" not in str(e) or handler.rows:
            raise
    return _arrow_read(buf, start, delim, quotes, handler,
                       block=min(max(len(buf) - start + 1, CSV_BLOCK_BYTES), 2**31 - 1), **convert)


def _ragged_error(buf: bytes, start: int, delim: str, quotes: int, header_line: int, name: str) -> MalformedCSVError:
    """The message for the first line with the wrong number of values. Read again on one thread so
    the reader stops at the first such line, then find that line's number with byte searches."""
    import pyarrow as pa

    h = _Ragged()
    try:
        _arrow_read(buf, start, delim, quotes, h, threads=False,
                    block=min(max(len(buf) - start + 1, CSV_BLOCK_BYTES), 2**31 - 1))
    except pa.ArrowInvalid:
        pass
    if not h.rows:
        return MalformedCSVError(f"{name}: cannot parse the CSV: a line has another number of values than the header")
    row = h.rows[0]
    width, got, text = row.expected_columns, row.actual_columns, row.text
    buf = _as_bytes(buf)                                  # an error path: a copy of a mapped file is fine
    pos = _row_position(buf, start, text.encode("utf-8"))
    if pos is not None:
        line = _breaks(buf, 0, pos) + 1 + _breaks(text.encode("utf-8"))     # where the record ends
    else:                                                                # not found: walk the text once
        try:
            found = _shape(buf[start:].decode("utf-8", "replace"), delim)[2]
        except MalformedCSVError:
            found = None
        line = found[0] if found else "?"
    fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=delim, quotechar='"'), [])
    hint = " (the line ends with an extra separator)" if got == width + 1 and fields and fields[-1] == "" else ""
    if got < width and any("\n" in v or "\r" in v for v in fields):
        hint = " (a double quote opened on an earlier line seems never to be closed)"
    return MalformedCSVError(
        f"{name}: line {line} has {_n(got, 'value')} but the header (line {header_line}) has {width} columns "
        f"(separator {DELIMITER_NAMES.get(delim, repr(delim))}){hint}. Fix that line; values that "
        "contain the separator must be in double quotes")


def _unclosed_quote_line(buf: bytes, start: int, table, delim: str) -> int | None:
    """Line where a double quote opens that is never closed (the reader then takes the rest of the
    file as the last value), or None. Looks at the last row and the file's end only."""
    if table.num_rows == 0 or table.num_columns == 0:
        return None
    last = [table.column(i)[table.num_rows - 1].as_py() for i in range(table.num_columns)]
    v = last[-1]
    if isinstance(v, str) and ("\n" in v or "\r" in v):               # the quote swallowed lines
        tail = b'"' + v.replace('"', '""').encode("utf-8")
        if len(buf) - len(tail) >= start and buf[len(buf) - len(tail):] == tail:
            return _breaks(buf, 0, len(buf) - len(tail)) + 1
        return None
    if any(isinstance(x, str) and ("\n" in x or "\r" in x) for x in last):
        return None                                                    # a multi-line record, closed
    end = len(buf)
    while end > start and buf[end - 1] in b" \t\r\n":
        end -= 1
    begin = max(buf.rfind(b"\n", start, end), buf.rfind(b"\r", start, end)) + 1
    begin = max(begin, start)
    line = buf[begin:end]
    if b'"' not in line:
        return None
    try:
        for _ in csv.reader(io.StringIO(line.decode("utf-8", "replace"), newline=""), delimiter=delim,
                            quotechar='"', doublequote=True, strict=True):
            pass
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            return _breaks(buf, 0, begin) + 1
    return None


def _has_hex_prefix(buf: bytes, chunk: int = 16 << 20) -> bool:
    """Whether '0x' or '0X' occurs in buf (NumPy over chunks: a '0' is too common for bytes.find)."""
    if buf.find(b"x", 0) < 0 and buf.find(b"X", 0) < 0:     # from 0, also for a mapped file
        return False
    arr = np.frombuffer(buf, dtype=np.uint8)
    for s in range(0, len(arr), chunk):
        a = arr[s:s + chunk + 1]
        x = (a[1:] | 0x20) == ord("x")
        if x.any() and (x & (a[:-1] == ord("0"))).any():
            return True
    return False


def _finite_wide(col) -> bool:
    import pyarrow.compute as pc

    a = pc.abs(col)
    return bool(pc.any(pc.and_(pc.greater_equal(a, 2.0**63), pc.is_finite(a))).as_py())


def _text_like_numbers(buf: bytes, start: int, delim: str, quotes: int, table):
    """Columns pyarrow read as numbers where pandas keeps what was written: whole numbers beyond
    int64 (pyarrow makes lossy floats of them; kept as uint64 when all fit, else as text, so ids
    like 12345678901234567890 stay distinct) and hexadecimal text such as 0x10 (pyarrow reads 16;
    kept as text). Only such columns are read again, as text, and only when they exist."""
    import pyarrow as pa
    import pyarrow.compute as pc

    suspects: dict[int, str] = {}
    hex_text = _has_hex_prefix(buf)
    for i, f in enumerate(table.schema):
        if pa.types.is_floating(f.type) and table.column(i).null_count < table.num_rows:
            mm = pc.min_max(table.column(i))
            hi = max(abs(mm["min"].as_py() or 0.0), abs(mm["max"].as_py() or 0.0))
            if 2.0**63 <= hi < float("inf") or (hi == float("inf") and _finite_wide(table.column(i))):
                suspects[i] = "wide"
        if hex_text and i not in suspects and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)):
            suspects[i] = "hex"
    if not suspects:
        return table
    names = table.column_names
    if len(set(names)) < len(names):
        return table                                      # names not unique: refused later anyway
    text = _arrow_read(buf, start, delim, quotes, _Ragged(), include_columns=[names[i] for i in suspects],
                       column_types={names[i]: pa.string() for i in suspects})
    if text.num_rows != table.num_rows:
        return table
    for k, (i, why) in enumerate(suspects.items()):
        col = text.column(k)
        if why == "hex":
            if pc.any(pc.match_substring_regex(col, r"^\s*0[xX]")).as_py():
                table = table.set_column(i, names[i], col)
            continue
        if not pc.all(pc.match_substring_regex(col, r"^\s*[+-]?[0-9]+\s*$"), skip_nulls=True).as_py():
            continue                                      # decimals or exponents: real floats
        trimmed = pc.utf8_trim_whitespace(col)
        try:
            as_int = pc.cast(trimmed, pa.uint64()) if col.null_count == 0 else None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            as_int = None
        table = table.set_column(i, names[i], as_int if as_int is not None else trimmed)
    return table


def _drop_blank_values(table):
    """A one-column file: lines of spaces are blank lines (pandas and the csv module skip them);
    pyarrow reads them as values. Drop them, and read the rest as numbers when it all is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(0)
    if not (pa.types.is_string(col.type) or pa.types.is_dictionary(col.type)):
        return table
    text = col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col
    blank = pc.fill_null(pc.match_substring_regex(text, r"^\s+$"), False)
    if not pc.any(blank).as_py():
        return table
    table = table.filter(pc.invert(blank))
    text = table.column(0).cast(pa.string())
    for t in (pa.int64(), pa.float64()):
        try:
            return table.set_column(0, table.column_names[0], pc.cast(pc.utf8_trim_whitespace(text), t))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return table


NO_QUOTES, HEADER_QUOTES, QUOTES = 0, 1, 2


def _quoting(buf: bytes, start: int) -> int:
    """NO_QUOTES: no double quote in the file; HEADER_QUOTES: only in a one-line header (as R's
    write.csv quotes names); else QUOTES: a quoted value may span lines, and the reader must track
    quotes to split the lines (30 % more CPU), so it does only then."""
    if buf.find(b'"', start) < 0:
        return NO_QUOTES
    nl = buf.find(b"\n", start)
    if nl < 0 or buf[start:nl].count(b'"') % 2:      # the header itself has a line break in quotes
        return QUOTES
    return QUOTES if buf.find(b'"', nl) >= 0 else HEADER_QUOTES


_NONBLANK = re.compile(rb"[^ \t\r\n\x0b\x0c]")
_BLANK_LINES = re.compile(rb'(?:(?:""|[ \t\x0b\x0c]*)(?:[ \t\x0b\x0c]*)(?:\r\n|\r|\n))*')


def _read_csv(held: list[bytes], name: str, encoding: str | None, delimiter: str | None,
              report: LoadReport) -> pd.DataFrame:
    """`held` = [the file's bytes]; emptied once the table is parsed so they can be freed."""
    import pyarrow as pa

    data = held.pop()
    buf, start = _utf8(data, name, encoding, report)
    sample, truncated = _head(buf, start)
    if not sample.strip() and (not truncated or _NONBLANK.search(buf, start) is None):
        raise EmptyFileError(f"{name} contains no text (only blank lines or spaces)")
    if delimiter is None or delimiter == "" or str(delimiter).lower() == "auto":
        delim = _choose_delimiter(sample, truncated, name, report)
    else:
        delim = _normalise_delimiter(delimiter)
        _check_given_delimiter(delim, sample, name)
    report.delimiter = delim
    try:
        header_line = _shape(sample, delim, max_records=1)[0] or 1
    except MalformedCSVError:
        header_line = 1
    start = _BLANK_LINES.match(buf, start).end()  # lines of spaces before the header, as csv skips them
    quotes = _quoting(buf, start)
    handler = _Ragged()
    try:
        table = _parse(buf, start, delim, quotes, handler, auto_dict_encode=True,
                       auto_dict_max_cardinality=DICT_MAX_CARDINALITY)
    except pa.ArrowInvalid as e:
        if handler.rows:
            raise _ragged_error(buf, start, delim, quotes, header_line, name) from None
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Empty CSV file" not in msg:
            m = re.search(r"[Rr]ow #?(\d+)", msg)
            where = f" near row {m.group(1)}" if m else ""
            raise MalformedCSVError(f"{name}: cannot parse the CSV{where}: {msg}") from None
        if start >= len(buf) or not buf[start:].strip(b' \t\r\n"'):
            raise EmptyFileError(f"{name} contains no column names or values") from None
        table = None                                   # one line, no line break: the header alone
    if table is None:
        buf, start = buf[start:] + b"\n", 0
        table = _parse(buf, start, delim, quotes, _Ragged())
    if quotes == QUOTES:
        line = _unclosed_quote_line(buf, start, table, delim)
        if line is not None:
            raise MalformedCSVError(f"{name}: line {line}: a value opens a double quote that is never closed. "
                                    "Close the quote, or remove it")
    names = _header_names(table.column_names, name, report)
    _check_names(names, name)
    table = _text_like_numbers(buf, start, delim, quotes, table)
    if table.num_columns == 1:
        table = _drop_blank_values(table)
    if table.num_rows == 0:
        raise EmptyFileError(f"{name} has a header line but no data rows")
    del buf, data
    table = table.rename_columns(names)
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):                     # an empty column: NaN, as pandas reads it
            table = table.set_column(i, f.name, pa.nulls(table.num_rows, pa.float64()))
    report.null_counts = [c.null_count for c in table.columns]       # for _finish: no rescan
    table = _one_dictionary_chunk(table, _arrow_pool())
    frame = table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True,
                            memory_pool=_arrow_pool())
    del table
    if delim != ",":
        frame = _decimal_commas(frame, report)
        report.null_counts = None                                     # converted columns changed
    return frame


_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+(,\d+)?\s*$")


def _decimal_comma_numbers(v: pd.Series) -> pd.Series | None:
    """`v` (text, no missing values) as numbers when every value is one written with a decimal comma."""
    if v.str.contains(",", regex=False).any() and v.str.match(_DECIMAL_COMMA).all():
        return pd.to_numeric(v.str.replace(",", ".", regex=False).str.strip(), errors="coerce")
    return None


def _decimal_commas(frame: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Text columns that are all numbers written with a decimal comma (4,5) become numbers.
    Categorical columns are checked on their few categories, text columns with vectorised string
    operations (no Python per row)."""
    converted = []
    for c in frame.columns:
        s = frame[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = pd.Series(s.cat.categories)
            if len(cats) == 0 or not (pd.api.types.is_string_dtype(cats.dtype)
                                      or all(isinstance(x, str) for x in cats)):
                continue
            num = _decimal_comma_numbers(cats.astype("str"))
            if num is None:
                continue
            codes = np.asarray(s.cat.codes)
            values = np.append(num.to_numpy(dtype=np.float64, na_value=np.nan), np.nan)
            frame[c] = values[codes]                       # code -1 (missing) -> the appended NaN
        elif pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype) \
                or pd.api.types.is_bool_dtype(s.dtype):
            continue
        else:
            v = s.dropna()
            if len(v) == 0:
                continue
            if s.dtype == object and not all(isinstance(x, str) for x in v):
                continue
            num = _decimal_comma_numbers(v)
            if num is None:
                continue
            frame[c] = pd.to_numeric(s.str.replace(",", ".", regex=False).str.strip(), errors="coerce")
        converted.append(str(c))
    if converted:
        shown = ", ".join(f"'{c}'" for c in converted[:10]) + (" ..." if len(converted) > 10 else "")
        report.warnings.append(f"Decimal commas read as numbers (4,5 = 4.5) in {shown}")
    return frame


def _header_names(header: list[str], name: str, report: LoadReport) -> list[str]:
    names = [h.strip() for h in header]
    if any(a != b for a, b in zip(names, header)):
        report.warnings.append("Spaces around column names were removed")
    return [n if n else f"\x00empty{i}" for i, n in enumerate(names)]   # placeholder, checked in _finish


# ------------------------------------------------------------------------------------- Parquet, Excel
def _read_parquet(data: bytes, name: str, report: LoadReport) -> pd.DataFrame:
    """What `pandas.read_parquet` gives (pyarrow's reader with the file's pandas metadata, so a stored
    index becomes the index and is dropped here, and extension dtypes come back), read straight from
    the bytes or the mapped file (no copy into a file object) and converted column by column without
    consolidating blocks (`split_blocks`, `self_destruct`: one copy of each column, not two)."""
    import warnings

    import pyarrow as pa
    import pyarrow.parquet as pq

    if bytes(data[:4]) != b"PAR1":
        raise UnreadableFileError(f"{name} is not a Parquet file (it does not start with the Parquet "
                                  "signature); check the extension")
    try:
        table = pq.read_table(pa.BufferReader(pa.py_buffer(data)), use_pandas_metadata=True)
        meta = table.schema.metadata or {}
        table = _one_dictionary_chunk(table)
        with warnings.catch_warnings():          # pyarrow's block API under pandas 3, as read_parquet does
            warnings.filterwarnings("ignore", "make_block is deprecated")
            frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
    except (ValueError, OSError, ImportError, TypeError) as e:   # pyarrow.ArrowInvalid is a ValueError
        raise UnreadableFileError(f"cannot read {name} as Parquet: {_first_line(e)}") from None
    if b"PANDAS_ATTRS" in meta:                  # as pandas.read_parquet restores them
        import json
        frame.attrs = json.loads(meta[b"PANDAS_ATTRS"])
    if len(frame.columns) == 0:
        raise EmptyFileError(f"{name} has no columns")
    if len(frame) == 0:
        raise EmptyFileError(f"{name} has columns but no rows")
    frame.columns = [_name_str(c, i) for i, c in enumerate(frame.columns)]
    return frame.reset_index(drop=True)


def _read_excel(data: bytes, name: str, report: LoadReport) -> pd.DataFrame:
    if not data.startswith(b"PK\x03\x04"):
        hint = " It looks like an old .xls or password-protected file." if data.startswith(b"\xd0\xcf\x11\xe0") else ""
        raise UnreadableFileError(f"{name} is not an Excel .xlsx file.{hint} Save it as .xlsx (without "
                                  "a password) or as CSV")
    try:
        with pd.ExcelFile(io.BytesIO(data), engine="openpyxl") as book:
            sheets = book.sheet_names
            if not sheets:
                raise EmptyFileError(f"{name} has no sheets")
            raw = pd.read_excel(book, sheet_name=sheets[0], header=None)
    except LoadError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, TypeError, ImportError) as e:
        raise UnreadableFileError(f"cannot read {name} as an Excel workbook: {_first_line(e)}") from None
    report.sheet = str(sheets[0])
    if len(sheets) > 1:
        report.warnings.append(f"Read the first sheet '{sheets[0]}' only; the workbook has {len(sheets)} sheets")
    raw = raw.dropna(axis=1, how="all")                  # formatted but empty columns
    full = raw.notna().any(axis=1)
    if not full.any():
        raise EmptyFileError(f"{name}: the sheet '{sheets[0]}' is empty")
    raw = raw.loc[full.idxmax():]                        # leading empty rows
    header = [_name_str(v, i) if pd.notna(v) else f"\x00empty{i}" for i, v in enumerate(raw.iloc[0])]
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = header
    if len(frame) == 0:
        raise EmptyFileError(f"{name} has a header row but no data rows")
    frame = frame.infer_objects()
    return frame


def _name_str(v: Any, i: int) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if hasattr(v, "isoformat") and not isinstance(v, str):
        v = v.isoformat()
    s = str(v).strip()
    return s if s else f"\x00empty{i}"


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


# ------------------------------------------------------------------------------------- common checks
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_names(cols: list[str], name: str) -> None:
    """Duplicate names and names with control characters (empty names are checked in _finish)."""
    seen: dict[str, list[int]] = {}
    for i, c in enumerate(cols):
        if not c.startswith("\x00empty"):
            seen.setdefault(c, []).append(i + 1)
    dups = {c: pos for c, pos in seen.items() if len(pos) > 1}
    if dups:
        c, pos = next(iter(dups.items()))
        more = f" (and {len(dups) - 1} more duplicated name{'s' if len(dups) > 2 else ''})" if len(dups) > 1 else ""
        raise HeaderError(f"{name}: the column name '{c}' appears {len(pos)} times (columns "
                          f"{', '.join(map(str, pos))}){more}. Column names must be unique")
    bad = [i + 1 for i, c in enumerate(cols) if not c.startswith("\x00empty") and _CONTROL.search(c)]
    if bad:
        raise HeaderError(f"{name}: the name of column {bad[0]} contains a line break or control character; "
                          "rename it")


def _finish(frame: pd.DataFrame, name: str, report: LoadReport) -> pd.DataFrame:
    nulls = report.null_counts                # missing values per column, when the reader counted them
    report.null_counts = None
    if nulls is not None and len(nulls) != len(frame.columns):
        nulls = None
    cols = [str(c) for c in frame.columns]
    # A nameless, empty last column is what a separator at the end of every line produces: drop it.
    while cols and cols[-1].startswith("\x00empty") and frame.iloc[:, -1].isna().all():
        frame = frame.iloc[:, :-1]
        cols = cols[:-1]
        nulls = None if nulls is None else nulls[:-1]
        report.warnings.append("An empty, nameless last column (a separator at the end of every line) "
                               "was ignored")
    if not cols:
        raise EmptyFileError(f"{name} has no named columns")
    _check_names(cols, name)
    empty = [i + 1 for i, c in enumerate(cols) if c.startswith("\x00empty")]
    if empty:
        which = ", ".join(str(i) for i in empty)
        raise HeaderError(f"{name}: column{'s' if len(empty) > 1 else ''} {which} "
                          f"{'have' if len(empty) > 1 else 'has'} no name in the header. Give every column "
                          "a name")
    frame.columns = cols                        # the frame is this module's own: no copy needed
    # Fully empty rows (e.g. ',,,,' lines at the end of a spreadsheet export) carry nothing.
    empty_rows = None
    if nulls is None or min(nulls) > 0:         # a column without missing values: no empty row
        for c in cols:                          # column by column, stopping at the first full one
            m = frame[c].isna().to_numpy(dtype=bool)
            empty_rows = m if empty_rows is None else (empty_rows & m)
            if not empty_rows.any():
                break
    if empty_rows is not None and empty_rows.any():
        nulls = None
        report.empty_rows_dropped = int(empty_rows.sum())
        frame = frame.loc[~empty_rows].reset_index(drop=True)
        report.warnings.append(f"{report.empty_rows_dropped:,} completely empty row"
                               f"{'s were' if report.empty_rows_dropped > 1 else ' was'} ignored")
        if len(frame) == 0:
            raise EmptyFileError(f"{name} has column names but every row is empty")
    for c in cols:                                   # tz-aware times: keep the UTC clock time
        s = frame[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            frame[c] = s.dt.tz_convert("UTC").dt.tz_localize(None)
    if nulls is not None:
        report.all_null_columns = [c for c, k in zip(cols, nulls) if k == len(frame)]
    else:                                       # a column missing everywhere misses its first value
        report.all_null_columns = [c for c in cols
                                   if frame[c].iloc[:1].isna().iat[0] and not frame[c].notna().any()]
    if report.all_null_columns:
        shown = ", ".join(f"'{c}'" for c in report.all_null_columns[:10])
        more = f" and {len(report.all_null_columns) - 10} more" if len(report.all_null_columns) > 10 else ""
        report.warnings.append(f"Column{'s' if len(report.all_null_columns) > 1 else ''} {shown}{more} "
                               f"{'are' if len(report.all_null_columns) > 1 else 'is'} empty in every row")
    report.rows, report.columns = len(frame), len(cols)
    return frame


def __getattr__(name: str):
    """`data.loaders.propose_schema` (named in data/schema.py) lives in data.propose."""
    if name in ("propose_schema", "propose_schema_with_notes"):
        from data import propose
        return getattr(propose, name)
    raise AttributeError(f"module 'data.loaders' has no attribute {name!r}")
