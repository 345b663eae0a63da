"""Read a private table from a file or from uploaded bytes (.csv, .parquet, .xlsx) into pandas.

Only reading happens here; validation and encoding under the public schema are in `data.prepare`,
and a schema *proposal* read off the data is in `data.propose` (owner only, unconfirmed).

    frame = load_table("cohort.csv")                                  # path
    frame, report = load_table_with_report(raw_bytes, filename="cohort.csv")   # upload
    report.lines()        # ["Read 1,204 rows × 9 columns from cohort.csv (separator ';' detected ...)", ...]

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

Soft problems (all-null columns, dropped empty rows, a detected separator, extra sheets) are
warnings in the returned `LoadReport`; they are about private data and for the data owner only.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data.prepare import DataValidationError

SUFFIXES = (".csv", ".parquet", ".xlsx")
DEFAULT_MAX_BYTES = 200 * 1024 * 1024          # Streamlit's default upload limit is also 200 MB
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma ','", ";": "semicolon ';'", "\t": "tab", "|": "pipe '|'"}
_SNIFF_CHARS = 64 * 1024
_MAGIC = {b"PAR1": "a Parquet file", b"PK\x03\x04": "an Excel (.xlsx) or other zip file",
          b"\xd0\xcf\x11\xe0": "an old-style Excel (.xls) or password-protected Office file"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))   # long free-text cells are legal


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
               max_bytes: int = DEFAULT_MAX_BYTES, delimiter: str | None = None,
               root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The table in a path, bytes or a binary file object (.csv, .parquet or .xlsx).

    Raises a `LoadError` subclass with a specific message; see `load_table_with_report`.
    """
    return load_table_with_report(path_or_bytes, filename=filename, encoding=encoding,
                                  max_bytes=max_bytes, delimiter=delimiter, root=root)[0]


def load_table_with_report(path_or_bytes: Any, *, filename: str | None = None,
                           encoding: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                           delimiter: str | None = None, root: str | os.PathLike | None = None
                           ) -> tuple[pd.DataFrame, LoadReport]:
    """(frame, LoadReport) for a path, raw bytes, or a binary file object (e.g. a Streamlit upload).

    - The format comes from the extension of `filename` (or of the path / the file object's name);
      bytes without any name are recognised by their content (Parquet, xlsx, else CSV).
    - `max_bytes` is checked before anything is parsed.
    - CSV: `encoding` is tried as declared (default UTF-8, with or without BOM; a UTF-16 BOM is
      honoured); `delimiter` (',', ';', tab or '|'; 'tab' and '\\t' accepted) or, when None,
      detected with csv.Sniffer over those four and checked against every line.
    - `root`: when given, a path must resolve (symlinks followed) inside this folder; relative
      paths are taken relative to it.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
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
        frame = _read_csv(data, shown, encoding, delimiter, report)
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


def _too_big(name: str, size: int | None, max_bytes: int) -> None:
    if size is not None and size > max_bytes:
        raise FileTooLargeError(f"{name} is {_fmt_bytes(size)}; the limit is {_fmt_bytes(max_bytes)}. "
                                "Split the file or ask for a higher limit.")


def _read_source(src: Any, filename: str | None, max_bytes: int, root) -> tuple[bytes, str]:
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
        _too_big(name, p.stat().st_size, max_bytes)
        try:
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
        data = src.read(max_bytes + 1)
        if isinstance(data, str):
            raise TypeError("open the file in binary mode ('rb')")
        _too_big(name or "the uploaded data", len(data), max_bytes)
        return bytes(data), name
    raise TypeError(f"load_table needs a path, bytes or a binary file object, got {type(src).__name__}")


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
def _decode(data: bytes, name: str, encoding: str | None, report: LoadReport) -> str:
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise UnsupportedFormatError(f"{name} is not a CSV text file: it looks like {what}. "
                                         "Use the matching extension (.parquet or .xlsx) or export it as CSV")
    if encoding is not None and not str(encoding).strip():
        encoding = None
    if encoding is None:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            enc, shown_enc = "utf-16", "UTF-16"
        else:
            enc, shown_enc = "utf-8-sig", "UTF-8"
    else:
        try:
            enc = codecs.lookup(str(encoding)).name
        except LookupError:
            raise EncodingError(f"unknown text encoding '{encoding}'; try utf-8, latin-1 or cp1252") from None
        shown_enc = str(encoding)
        if enc == "utf-8":
            enc = "utf-8-sig"
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        byte = data[e.start:e.start + 1].hex().upper()
        if encoding is None:
            raise EncodingError(
                f"{name} is not valid UTF-8: byte 0x{byte} at offset {e.start:,} (line {line}) cannot be "
                "decoded. Save the file as UTF-8, or choose the encoding it was saved in (for example "
                "latin-1 or cp1252) and load it again") from None
        raise EncodingError(
            f"{name} is not valid {shown_enc}: byte 0x{byte} at offset {e.start:,} (line {line}) cannot "
            "be decoded. Choose another encoding (for example utf-8, latin-1 or cp1252)") from None
    if "\x00" in text:
        raise EncodingError(f"{name} contains NUL characters: it is a binary file, or UTF-16 text without a "
                            "byte-order mark (choose encoding utf-16), not a CSV text file")
    report.encoding = shown_enc
    return text


def _normalise_delimiter(d: str) -> str:
    d = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(str(d).lower(), str(d))
    if len(d) != 1 or d in "\r\n\"" or d.isalnum():
        raise DelimiterError(f"the column separator must be one character such as ',' ';' tab or '|', got {d!r}")
    return d


def _blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def _records(text: str, delim: str):
    """(physical line number, fields) of each non-blank record."""
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


def _record_start_line(text: str, delim: str, index: int) -> int:
    """Physical line where the `index`-th non-blank record (0 = header) starts."""
    prev_end = 0
    for k, (line, row) in enumerate(_records(text, delim)):
        if k == index:
            return prev_end + 1 + _leading_blank_lines(text, prev_end)
        prev_end = line
    return prev_end + 1


def _leading_blank_lines(text: str, after_line: int) -> int:
    lines = text.splitlines()[after_line:]
    k = 0
    while k < len(lines) and not lines[k].strip():
        k += 1
    return k


def _sample(text: str) -> tuple[str, bool]:
    if len(text) <= _SNIFF_CHARS:
        return text, False
    cut = text.rfind("\n", 0, _SNIFF_CHARS)
    return (text[:cut] if cut > 0 else text[:_SNIFF_CHARS]), True


def _choose_delimiter(text: str, name: str, report: LoadReport) -> str:
    sample, truncated = _sample(text)
    widths: dict[str, int] = {}
    fits: list[str] = []
    for d in DELIMITERS:
        try:
            _, width, bad = _shape(sample, d)
        except MalformedCSVError:
            continue
        widths[d] = width
        if width >= 2 and (bad is None or (truncated and bad[0] >= sample.count("\n"))):
            fits.append(d)
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    report.delimiter_detected = True
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
        return splitting[0]          # the one candidate: the full scan names the bad line
    names = ", ".join(DELIMITER_NAMES[d] for d in splitting[:-1]) + " and " + DELIMITER_NAMES[splitting[-1]]
    raise DelimiterError(f"{name}: cannot tell which character separates the columns: {names} all split the "
                         "first line, but none gives the same number of values on every line. Choose the "
                         "separator under the reading options, or fix the file")


def _read_csv(data: bytes, name: str, encoding: str | None, delimiter: str | None,
              report: LoadReport) -> pd.DataFrame:
    text = _decode(data, name, encoding, report)
    if not text.strip():
        raise EmptyFileError(f"{name} contains no text (only blank lines or spaces)")
    if delimiter is None or delimiter == "" or str(delimiter).lower() == "auto":
        delim = _choose_delimiter(text, name, report)
    else:
        delim = _normalise_delimiter(delimiter)
        sample = _sample(text)[0]
        if _shape(sample, delim, max_records=1)[1] < 2:
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
    report.delimiter = delim
    try:
        header_line, width, bad = _shape(text, delim)
    except MalformedCSVError as e:
        raise MalformedCSVError(f"{name}: {e}") from None
    if bad is not None:
        line, got, row = bad
        hint = " (the line ends with an extra separator)" if got == width + 1 and row[-1] == "" else ""
        if got < width and any("\n" in v or "\r" in v for v in row):
            hint = " (a double quote opened on an earlier line seems never to be closed)"
        raise MalformedCSVError(
            f"{name}: line {line} has {_n(got, 'value')} but the header (line {header_line}) has {width} columns "
            f"(separator {DELIMITER_NAMES.get(delim, repr(delim))}){hint}. Fix that line; values that "
            "contain the separator must be in double quotes")
    header = next((row for _, row in _records(text, delim)), None)
    if header is None:
        raise EmptyFileError(f"{name} contains no column names or values")
    names = _header_names(header, name, report)
    _check_names(names, name)
    try:
        frame = pd.read_csv(io.StringIO(text, newline=""), sep=delim, header=0, names=names, index_col=False, dtype=None, low_memory=False,
                            skip_blank_lines=True, quotechar='"', doublequote=True, engine="c")
    except (pd.errors.ParserError, ValueError, csv.Error) as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        m = re.search(r"EOF inside string starting at row (\d+)", msg)
        if m:
            line = _record_start_line(text, delim, int(m.group(1)))
            raise MalformedCSVError(f"{name}: line {line}: a value opens a double quote that is never closed. "
                                    "Close the quote, or remove it") from None
        m = re.search(r"line (\d+)", msg)
        where = f" near line {m.group(1)}" if m else ""
        raise MalformedCSVError(f"{name}: cannot parse the CSV{where}: {msg}") from None
    if len(frame) == 0:
        raise EmptyFileError(f"{name} has a header line but no data rows")
    if delim != ",":
        frame = _decimal_commas(frame, report)
    return frame


_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+(,\d+)?\s*$")


def _decimal_commas(frame: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Text columns that are all numbers written with a decimal comma (4,5) become numbers."""
    converted = []
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
            continue
        v = s.dropna()
        if len(v) == 0 or not all(isinstance(x, str) for x in v):
            continue
        if v.str.contains(",", regex=False).any() and v.str.match(_DECIMAL_COMMA).all():
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
    if not data.startswith(b"PAR1"):
        raise UnreadableFileError(f"{name} is not a Parquet file (it does not start with the Parquet "
                                  "signature); check the extension")
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError, ImportError, TypeError) as e:   # pyarrow.ArrowInvalid is a ValueError
        raise UnreadableFileError(f"cannot read {name} as Parquet: {_first_line(e)}") from None
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
    cols = [str(c) for c in frame.columns]
    # A nameless, empty last column is what a separator at the end of every line produces: drop it.
    while cols and cols[-1].startswith("\x00empty") and frame.iloc[:, -1].isna().all():
        frame = frame.iloc[:, :-1]
        cols = cols[:-1]
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
    frame = frame.copy()
    frame.columns = cols
    # Fully empty rows (e.g. ',,,,' lines at the end of a spreadsheet export) carry nothing.
    empty_rows = frame.isna().all(axis=1)
    if empty_rows.any():
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
    report.all_null_columns = [c for c in cols if frame[c].isna().all()]
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
