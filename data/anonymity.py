"""Anonymity-risk measures of a record-level table, for the data owner only (pandas/NumPy, no Streamlit).

Before a table leaves the hospital, the data owner asks how identifiable it is. The owner declares
quasi-identifiers (QI: what an outsider may know about a patient, e.g. age, site, diagnosis date,
stage) and sensitive attributes (SA: what must not be learnt, e.g. Gleason score, vital status), in
the schema (`quasi_identifiers`, `sensitive` in [dataset]) or on the page. `risk_report` measures,
for the raw table and for a version generalised with the schema's PUBLIC bins (numeric bin edges,
dates by month, quarter or year, categories outside the list as "other"):

- k-anonymity: the size of the smallest equivalence class (patients sharing one QI combination);
- the largest re-identification risk 1/k, the average risk, and the share of patients in classes
  smaller than 5 and 11 (the usual small-cell thresholds);
- l-diversity: distinct (fewest distinct SA values in a class) and entropy (exp of the smallest
  entropy of a class's SA distribution, natural log);
- t-closeness: the largest distance between a class's SA distribution and the whole table's: the
  "equal distance" (total variation) for categorical SAs and the ordered Earth Mover's Distance
  (1/(m-1) * sum of |cumulative differences| over the m ordered values) for numeric and date SAs;
- the smallest classes with their QI combinations.

PRIVACY FACTS. Every figure here is computed from the TRUE table: nothing is differentially private,
nothing is charged to any budget, and none of it may be shown to analysts (the page is owner-only and
refuses analysts on the server). The smallest classes' QI combinations single out real patients.

The privacy unit is one patient (`unit`, the schema's `privacy_unit`): a class's size is the number of
distinct patients in it, not of rows; a patient with rows in several classes counts in each, and is
"in a class smaller than 5" when any of them is. SA distributions count each patient once per value.

Definitions follow pyCANON (Sáinz-Pardo Díaz & López García, Scientific Data 2022; the field's
reference library, which cannot be installed beside this project's numpy/pandas), with one row per
patient giving the same numbers; pyCANON's `gen=True` for several SAs (l = smallest over SAs, t =
largest). Conventions of our own, stated because pyCANON differs:
- a missing value is a value of its own ("missing"), like the schema's explicit missing bucket (an
  outsider may know that a value was not recorded); pyCANON drops rows with a missing QI from every
  class. For ordered distances, "missing" comes after the largest value.
- entropy l is reported as the real number exp(H); pyCANON reports its integer part (`entropy_l_int`).
- the ordered EMD of a single-valued SA is 0 (pyCANON divides by m-1 = 0).
Computation is vectorised: each measure is a few group-bys over integer codes, O(n log n); the
ordered EMD uses prefix sums of the global cumulative distribution instead of a loop over values.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.schema import (CategoricalColumn, DateColumn, NumericColumn, Schema, _category_str,
                         date_bin_starts)

MISSING = "missing"
THRESHOLDS = (5, 11)
DATE_UNITS = ("month", "quarter", "year")      # generalisation of dates offered on the page
OWNER_ONLY_NOTE = ("Computed from the true data: not differentially private and not charged to any budget. "
                   "For the data owner only; never shown to analysts. The smallest classes single out real "
                   "patients.")

Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class Encoded:
    """One column as integer codes 0..m-1 (value order when `ordered`) and their labels."""

    codes: np.ndarray
    labels: tuple[str, ...]
    ordered: bool


def _show(v) -> str:
    """A value as text for the report: dates without a midnight time, integral floats as integers."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return MISSING
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _is_ordered_dtype(s: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)) or \
        pd.api.types.is_datetime64_any_dtype(s) or \
        (isinstance(s.dtype, pd.CategoricalDtype) and bool(s.cat.ordered))


def encode(s: pd.Series, ordered: bool | None = None) -> Encoded:
    """Codes of a column's values; a missing value is one more value, "missing" (last in order).

    `ordered` None: numeric, date and ordered-categorical columns are ordered (pyCANON's rule: numeric
    SAs get the ordered distance), others are not. Only values present in `s` get a code."""
    if ordered is None:
        ordered = _is_ordered_dtype(s)
    codes, uniques = pd.factorize(s, sort=ordered, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    labels = [_show(u) for u in np.asarray(uniques, dtype=object)]
    if (codes < 0).any():
        codes[codes < 0] = len(labels)
        labels.append(MISSING)
    return Encoded(codes, tuple(labels), bool(ordered))


# ------------------------------------------------------------------------------ equivalence classes
def _uniq(a: np.ndarray, counts: bool = False):
    """Sorted distinct values (and their counts) of an integer array, by sorting: numpy 2.4's
    hash-based np.unique is ~30x slower on 10^6 int64 keys."""
    s = np.sort(a)
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if s.size else np.zeros(0, dtype=np.int64)
    if not counts:
        return s[start]
    return s[start], np.diff(np.r_[start, s.size])


@dataclass
class Classes:
    """Equivalence classes of a table under a set of quasi-identifiers, counted in patients."""

    qi: tuple[str, ...]
    row_class: np.ndarray      # class of each row, 0..C-1
    unit: np.ndarray           # patient of each row, 0..U-1
    n_units: int
    size: np.ndarray           # distinct patients per class
    rows: np.ndarray           # rows per class
    first_row: np.ndarray      # one row of each class (its QI values)
    unit_min_size: np.ndarray  # per patient: the smallest class the patient is in
    qi_labels: dict            # qi -> Encoded (for showing a class's combination)

    @property
    def n_classes(self) -> int:
        return int(self.size.size)

    def combination(self, c: int) -> dict[str, str]:
        r = self.first_row[c]
        return {q: e.labels[e.codes[r]] for q, e in self.qi_labels.items()}


def _unit_codes(frame: pd.DataFrame, unit: str | None) -> tuple[np.ndarray, int]:
    if unit is None:                                   # no privacy unit given: one row = one individual
        return np.arange(len(frame), dtype=np.int64), len(frame)
    codes, uniques = pd.factorize(frame[unit], use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"rows without a patient id in '{unit}'")
    return codes.astype(np.int64), len(uniques)


def _combine(encoded: Sequence[Encoded], n: int) -> np.ndarray:
    cls = np.zeros(n, dtype=np.int64)
    for e in encoded:                                  # re-factorised each step: codes stay below n
        cls = pd.factorize(cls * max(len(e.labels), 1) + e.codes)[0].astype(np.int64)
    return cls


def equivalence_classes(frame: pd.DataFrame, qi: Sequence[str], unit: str | None = None,
                        encoded: dict[str, Encoded] | None = None) -> Classes:
    """Classes of rows sharing all QI values; sizes count distinct patients (`unit` column)."""
    if len(frame) == 0:
        raise ValueError("the table has no rows")
    enc = {q: (encoded or {}).get(q) or encode(frame[q], ordered=False) for q in qi}
    n = len(frame)
    row_class = _combine(list(enc.values()), n)
    u, n_units = _unit_codes(frame, unit)
    n_classes = int(row_class.max()) + 1
    pair = _uniq(row_class * n_units + u)              # distinct (class, patient)
    pc, pu = pair // n_units, pair % n_units
    size = np.bincount(pc, minlength=n_classes)
    unit_min = np.full(n_units, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(unit_min, pu, size[pc])
    # codes come in order of first appearance: a class's first row is where the running max grows
    first_row = np.flatnonzero(np.r_[True, row_class[1:] > np.maximum.accumulate(row_class)[:-1]])
    return Classes(tuple(qi), row_class, u, n_units, size, np.bincount(row_class, minlength=n_classes),
                   first_row, unit_min, enc)


# ---------------------------------------------------------------------------- sensitive attributes
@dataclass
class _SaCounts:
    """Patients per (class, SA value), sorted by class then value, and the table's distribution."""

    cls: np.ndarray            # class of each (class, value) cell
    val: np.ndarray            # value code of the cell
    count: np.ndarray          # distinct patients with that value in that class
    p: np.ndarray              # whole table: share of (patient, value) pairs per value
    m: int
    n_classes: int


def _sa_counts(classes: Classes, e: Encoded) -> _SaCounts:
    m = max(len(e.labels), 1)
    pair = pd.factorize(classes.row_class * classes.n_units + classes.unit)[0].astype(np.int64)
    pair_class = np.empty(int(pair.max()) + 1, dtype=np.int64)
    pair_class[pair] = classes.row_class
    triple = _uniq(pair * m + e.codes)                 # distinct (class, patient, value)
    cv = pair_class[triple // m] * m + triple % m
    cells, count = _uniq(cv, counts=True)
    pv = _uniq(classes.unit * m + e.codes) % m         # distinct (patient, value) in the whole table
    p = np.bincount(pv, minlength=m).astype(np.float64)
    return _SaCounts(cells // m, cells % m, count.astype(np.float64), p / p.sum(), m, classes.n_classes)


def _per_class_shares(sc: _SaCounts) -> np.ndarray:
    tot = np.bincount(sc.cls, weights=sc.count, minlength=sc.n_classes)
    return sc.count / tot[sc.cls]


def _distinct(sc: _SaCounts) -> np.ndarray:
    return np.bincount(sc.cls, minlength=sc.n_classes)


def _entropy(sc: _SaCounts) -> np.ndarray:
    q = _per_class_shares(sc)
    return -np.bincount(sc.cls, weights=q * np.log(q), minlength=sc.n_classes)


def _equal_distance(sc: _SaCounts) -> np.ndarray:
    """Per class: 1/2 sum over values |q - p| (values absent from the class contribute p)."""
    q = _per_class_shares(sc)
    pv = sc.p[sc.val]
    return 0.5 * (1.0 + np.bincount(sc.cls, weights=np.abs(q - pv) - pv, minlength=sc.n_classes))


def _ordered_emd(sc: _SaCounts, progress: Progress | None = None, chunks: int = 20) -> np.ndarray:
    """Per class: 1/(m-1) * sum_j |Q_c(j) - P(j)|, Q_c and P the cumulative distributions.

    Q_c is constant between the class's own values, so each run [a, b) of values with Q_c = q adds
    sum_{a<=j<b} |q - P(j)|, found in O(log m) with prefix sums of the nondecreasing P."""
    out = np.zeros(sc.n_classes)
    if sc.m <= 1:
        return out
    P = np.cumsum(sc.p)
    S = np.concatenate([[0.0], np.cumsum(P)])
    q = _per_class_shares(sc)
    Q = pd.Series(q).groupby(sc.cls).cumsum().to_numpy()
    n = sc.cls.size
    starts = np.flatnonzero(np.r_[True, sc.cls[1:] != sc.cls[:-1]])        # first cell of each class
    k = max(1, min(chunks, starts.size))
    bounds = np.unique(np.r_[starts[(np.arange(1, k) * starts.size) // k], n])   # chunks of whole classes
    bounds = bounds[bounds > 0]
    lo = 0
    for i, hi in enumerate(bounds):
        cls, val, Qk = sc.cls[lo:hi], sc.val[lo:hi], Q[lo:hi]
        last = np.r_[cls[1:] != cls[:-1], True]
        a = val
        b = np.where(last, sc.m, np.r_[val[1:], sc.m])
        t = np.clip(np.searchsorted(P, Qk, side="right"), a, b)
        seg = Qk * (t - a) - (S[t] - S[a]) + (S[b] - S[t]) - Qk * (b - t)
        first = np.r_[True, cls[1:] != cls[:-1]]
        seg = seg + np.where(first, S[val], 0.0)        # before the class's first value: Q = 0
        out += np.bincount(cls, weights=seg, minlength=sc.n_classes)
        lo = hi
        if progress is not None:
            progress((i + 1) / len(bounds), f"ordered distance: {hi:,} of {n:,} class cells")
    return out / (sc.m - 1)


# --------------------------------------------------------------------- pyCANON-style public measures
def k_anonymity(frame: pd.DataFrame, qi: Sequence[str], unit: str | None = None) -> int:
    """Smallest number of patients sharing one QI combination."""
    return int(equivalence_classes(frame, qi, unit).size.min())


def l_diversity(frame: pd.DataFrame, qi: Sequence[str], sa: Sequence[str], unit: str | None = None) -> int:
    """Distinct l: the fewest distinct values of an SA in a class (smallest over the SAs)."""
    cl = equivalence_classes(frame, qi, unit)
    return min(int(_distinct(_sa_counts(cl, encode(frame[s]))).min()) for s in sa)


def entropy_l_diversity(frame: pd.DataFrame, qi: Sequence[str], sa: Sequence[str],
                        unit: str | None = None) -> float:
    """Entropy l: exp of the smallest entropy (natural log) of a class's SA distribution."""
    cl = equivalence_classes(frame, qi, unit)
    return float(math.exp(min(float(_entropy(_sa_counts(cl, encode(frame[s]))).min()) for s in sa)))


def t_closeness(frame: pd.DataFrame, qi: Sequence[str], sa: Sequence[str], unit: str | None = None,
                ordered: bool | None = None, progress: Progress | None = None) -> float:
    """t: the largest distance of a class's SA distribution from the table's (largest over the SAs).
    Ordered EMD for ordered SAs (numeric/date dtype when `ordered` is None), else equal distance."""
    cl = equivalence_classes(frame, qi, unit)
    ts = []
    for s in sa:
        e = encode(frame[s], ordered)
        sc = _sa_counts(cl, e)
        ts.append(float((_ordered_emd(sc, progress) if e.ordered else _equal_distance(sc)).max()))
    return max(ts)


def entropy_l_int(entropy_l: float) -> int:
    """pyCANON's entropy l (the integer part of exp(H)), robust to exp(log 2) = 1.9999999999999998."""
    return int(math.floor(entropy_l + 1e-9))


# ----------------------------------------------------------------------------------- generalisation
def _numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _dates(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        return pd.to_datetime(s, errors="coerce", format="mixed")
    return pd.to_datetime(s, errors="coerce")


def _categorical_text(s: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    text = np.array([_category_str(v) for v in np.asarray(uniques, dtype=object)] + [None], dtype=object)
    return pd.Series(text[codes], index=s.index, dtype=object)


def numeric_bin_labels(col: NumericColumn) -> list[str]:
    """Labels of the public bins in value order: [a, b) bins (last closed), then below/above the edges
    when the edges do not span the bounds, then missing (the releases' labels, privacy.measurements)."""
    e = col.bin_edges
    labels = [f"{a:g}–{b:g}" for a, b in zip(e, e[1:])]
    return ([f"< {e[0]:g}"] if e[0] > col.lower else []) + labels + \
        ([f"> {e[-1]:g}"] if e[-1] < col.upper else []) + [MISSING]


def generalise_column(s: pd.Series, col, date_unit: str | None = None) -> pd.Series:
    """One column generalised with public metadata only: numeric values clamped to the public bounds
    and put in the public bins, dates clamped to the public range and cut by `date_unit` (default the
    schema's), categories outside the public list as "other". An ordered categorical series."""
    if isinstance(col, NumericColumn):
        x = np.clip(_numeric(s).to_numpy(), col.lower, col.upper)
        e = np.asarray(col.bin_edges, dtype=np.float64)
        nb = len(e) - 1
        below = int(e[0] > col.lower)
        idx = np.searchsorted(e, x, side="right") - 1
        idx[x == e[-1]] = nb - 1
        codes = idx + below
        codes[x < e[0]] = 0
        codes[x > e[-1]] = below + nb
        labels = numeric_bin_labels(col)
        codes[np.isnan(x)] = len(labels) - 1
        return pd.Series(pd.Categorical.from_codes(codes, labels, ordered=True), index=s.index, name=s.name)
    if isinstance(col, DateColumn):
        unit = date_unit or col.bin_unit
        d = _dates(s)
        miss = d.isna().to_numpy()
        days = d.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
        epoch = np.datetime64("1970-01-01", "D")
        lo, hi = ((np.datetime64(x, "D") - epoch).astype(np.int64) for x in (col.start, col.end))
        starts = date_bin_starts(col.start, col.end, unit)
        sd = np.array([(np.datetime64(x, "D") - epoch).astype(np.int64) for x in starts])
        codes = np.clip(np.searchsorted(sd, np.clip(days, lo, hi), side="right") - 1, 0, len(starts) - 1)
        fmt = {"day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m", "quarter": "", "year": "%Y"}[unit]
        labels = [f"{x.year}-Q{(x.month - 1) // 3 + 1}" if unit == "quarter" else x.strftime(fmt) for x in starts]
        codes[miss] = len(labels)
        return pd.Series(pd.Categorical.from_codes(codes, labels + [MISSING], ordered=True),
                         index=s.index, name=s.name)
    if isinstance(col, CategoricalColumn):
        t = _categorical_text(s)
        lab = list(col.categories)
        codes = pd.Index(lab, dtype=object).get_indexer(t)
        codes[(codes < 0) & t.notna().to_numpy()] = len(lab) + 1
        codes[t.isna().to_numpy()] = len(lab)
        return pd.Series(pd.Categorical.from_codes(codes, lab + [MISSING, "other"], ordered=False),
                         index=s.index, name=s.name)
    raise ValueError(f"column '{s.name}' cannot be generalised (kind {getattr(col, 'kind', '?')})")


def raw_column(s: pd.Series, col) -> pd.Series:
    """The raw values as the schema reads them (numbers parsed, dates parsed, categories as text)."""
    if isinstance(col, NumericColumn):
        return _numeric(s)
    if isinstance(col, DateColumn):
        return _dates(s)
    return _categorical_text(s)


def generalise(frame: pd.DataFrame, schema: Schema, columns: Sequence[str],
               date_unit: str | None = None) -> pd.DataFrame:
    """`columns` of `frame` generalised with the schema's public bins (see `generalise_column`)."""
    return pd.DataFrame({c: generalise_column(frame[c], schema.column(c), date_unit) for c in columns},
                        index=frame.index)


def generalisation_words(schema: Schema, columns: Sequence[str], date_unit: str | None = None) -> dict[str, str]:
    """How each column is generalised, in words (public: from the schema only)."""
    out = {}
    for c in columns:
        col = schema.column(c)
        if isinstance(col, NumericColumn):
            e = col.bin_edges
            out[c] = f"{len(e) - 1} public bins from {e[0]:g} to {e[-1]:g}" + (f" {col.unit}" if col.unit else "")
        elif isinstance(col, DateColumn):
            out[c] = f"by {date_unit or col.bin_unit}"
        else:
            out[c] = "declared categories (others as 'other')"
    return out


# ------------------------------------------------------------------------------------------- report
def check_declaration(schema: Schema, qi: Sequence[str], sa: Sequence[str]) -> None:
    """Raises ValueError with a message for the owner when the declaration cannot be measured."""
    if not qi:
        raise ValueError("declare at least one quasi-identifier")
    known = {c.name: c.kind for c in schema.columns}
    bad = [c for c in (*qi, *sa) if known.get(c, "id") == "id"]
    if bad:
        raise ValueError(f"not a non-id column of the schema: {', '.join(bad)}")
    both = set(qi) & set(sa)
    if both:
        raise ValueError(f"declared both quasi-identifier and sensitive: {', '.join(sorted(both))}")


def _version(name: str, label: str, frame: pd.DataFrame, unit: str | None, qi: Sequence[str],
             sa: Sequence[str], ordered: dict[str, bool], skip_t: set[str], smallest: int,
             thresholds: Sequence[int], progress: Progress | None) -> dict:
    cl = equivalence_classes(frame, qi, unit)
    k = int(cl.size.min())
    umin = cl.unit_min_size
    out: dict = {
        "name": name, "label": label,
        "patients": cl.n_units, "rows": int(len(frame)), "classes": cl.n_classes,
        "k": k, "max_risk": 1.0 / k, "average_risk": float(np.mean(1.0 / umin)),
        "unique_patients": int((umin == 1).sum()),
        "share_below": {str(t): float(np.mean(umin < t)) for t in thresholds},
        "patients_below": {str(t): int((umin < t).sum()) for t in thresholds},
        "classes_below": {str(t): int((cl.size < t).sum()) for t in thresholds},
        "l_distinct": {}, "l_entropy": {}, "entropy_l_int": {}, "t_closeness": {}, "t_distance": {},
    }
    per_class_l: dict[str, np.ndarray] = {}
    for s in sa:
        e = encode(frame[s], ordered[s])
        sc = _sa_counts(cl, e)
        per_class_l[s] = _distinct(sc)
        out["l_distinct"][s] = int(per_class_l[s].min())
        el = float(math.exp(float(_entropy(sc).min())))
        out["l_entropy"][s] = el
        out["entropy_l_int"][s] = entropy_l_int(el)
        out["t_distance"][s] = "ordered" if e.ordered else "equal"
        if s in skip_t:
            out["t_closeness"][s] = None
        else:
            out["t_closeness"][s] = float((_ordered_emd(sc, progress) if e.ordered else _equal_distance(sc)).max())
    if sa:
        out["l_distinct_min"] = min(out["l_distinct"].values())
        out["l_entropy_min"] = min(out["l_entropy"].values())
        ts = [t for t in out["t_closeness"].values() if t is not None]
        out["t_closeness_max"] = max(ts) if ts else None
    order = np.lexsort((np.arange(cl.n_classes), cl.size))[:smallest]
    out["smallest_classes"] = [
        {"quasi_identifiers": cl.combination(int(c)), "patients": int(cl.size[c]), "rows": int(cl.rows[c]),
         "distinct_sensitive": {s: int(per_class_l[s][c]) for s in sa}}
        for c in order]
    return out


def risk_report(frame: pd.DataFrame, schema: Schema, quasi_identifiers: Sequence[str],
                sensitive: Sequence[str] = (), *, date_unit: str | None = None, numeric_t: bool = False,
                smallest: int = 10, thresholds: Sequence[int] = THRESHOLDS,
                progress: Progress | None = None) -> dict:
    """The anonymity-risk report of `frame` (true data: owner only) as a JSON-ready dict.

    Two versions: "raw" (values as the schema parses them) and "generalised" (public bins, dates by
    `date_unit`, default the schema's bin unit). Sensitive numeric and date columns are compared in
    value order; on the raw table their t-closeness (many distinct values) is computed only when
    `numeric_t` is true (None otherwise), on the generalised table always (over the public bins)."""
    qi, sa = list(quasi_identifiers), list(sensitive)
    check_declaration(schema, qi, sa)
    unit = schema.privacy_unit if schema.privacy_unit in frame.columns else None
    cols = qi + sa
    kind = {c: schema.column(c) for c in cols}
    ordered = {c: isinstance(kind[c], (NumericColumn, DateColumn)) for c in cols}
    units = frame[[unit]] if unit else pd.DataFrame(index=frame.index)
    raw = pd.concat([units, pd.DataFrame({c: raw_column(frame[c], kind[c]) for c in cols}, index=frame.index)],
                    axis=1)
    gen = pd.concat([units, generalise(frame, schema, cols, date_unit)], axis=1)
    slow = {s for s in sa if ordered[s]}
    date_cols = [c for c in cols if isinstance(kind[c], DateColumn)]
    versions = [
        _version("raw", "Raw table", raw, unit, qi, sa, ordered, set() if numeric_t else slow, smallest,
                 thresholds, progress),
        _version("generalised", "Generalised with public bins", gen, unit, qi, sa, ordered, set(), smallest,
                 thresholds, None),
    ]
    versions[1]["generalisation"] = generalisation_words(schema, cols, date_unit)
    return {
        "report": "anonymity-risk",
        "dataset": schema.dataset_id,
        "title": schema.title,
        "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "note": OWNER_ONLY_NOTE,
        "privacy_unit": unit or "row",
        "quasi_identifiers": qi,
        "sensitive": sa,
        "date_unit": (date_unit or (kind[date_cols[0]].bin_unit if date_cols else None)),
        "thresholds": list(thresholds),
        "raw_numeric_t_closeness": bool(numeric_t) if slow else None,
        "definitions": DEFINITIONS,
        "versions": versions,
    }


DEFINITIONS = {
    "k": "k-anonymity: patients in the smallest equivalence class (patients sharing all quasi-identifier values).",
    "max_risk": "Largest re-identification risk, 1/k: the chance of picking the right patient in the smallest class.",
    "average_risk": "Average over patients of 1/(size of the patient's smallest class).",
    "share_below": "Share of patients in an equivalence class smaller than the threshold.",
    "l_distinct": "Distinct l-diversity: fewest distinct values of the sensitive attribute in a class.",
    "l_entropy": "Entropy l-diversity: exp of the smallest entropy (natural log) of a class's sensitive values.",
    "t_closeness": "t-closeness: largest distance between a class's sensitive values and the whole table's "
                   "(equal distance = total variation for categories; ordered Earth Mover's Distance for "
                   "numbers and dates).",
}


def report_json(report: dict) -> str:
    """The report as JSON text (the page's download)."""
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)


# ------------------------------------------------------------------------------------- presentation
def _fmt_share(x: float) -> str:
    return f"{x:.1%}" if x >= 0.001 or x == 0 else f"{x:.2%}"


def measure_rows(report: dict) -> list[dict[str, str]]:
    """One row per measure, one column per version (raw, generalised): the page's and HTML's table."""
    vs = report["versions"]
    rows: list[dict[str, str]] = []

    def add(measure: str, f):
        rows.append({"measure": measure, **{v["label"]: f(v) for v in vs}})

    add("patients", lambda v: f"{v['patients']:,}")
    add("equivalence classes", lambda v: f"{v['classes']:,}")
    add("k-anonymity (smallest class)", lambda v: f"{v['k']:,}")
    add("largest re-identification risk (1/k)", lambda v: f"{v['max_risk']:.3g}")
    add("average re-identification risk", lambda v: f"{v['average_risk']:.3g}")
    add("unique patients (class of 1)", lambda v: f"{v['unique_patients']:,}")
    for t in report["thresholds"]:
        add(f"patients in classes smaller than {t}",
            lambda v, t=str(t): f"{_fmt_share(v['share_below'][t])} ({v['patients_below'][t]:,})")
    for s in report["sensitive"]:
        add(f"l-diversity, distinct: {s}", lambda v, s=s: f"{v['l_distinct'][s]}")
        add(f"l-diversity, entropy: {s}", lambda v, s=s: f"{v['l_entropy'][s]:.3g}")
        add(f"t-closeness: {s}", lambda v, s=s: ("not computed" if v["t_closeness"][s] is None else
                                                f"{v['t_closeness'][s]:.3f} ({v['t_distance'][s]} distance)"))
    return rows


def smallest_rows(version: dict, sensitive: Sequence[str] = ()) -> list[dict]:
    """The smallest classes of one version as table rows (QI values, patients, rows). Owner only."""
    out = []
    several = version["rows"] != version["patients"]       # several rows per patient: show both counts
    for c in version["smallest_classes"]:
        row = dict(c["quasi_identifiers"])
        row["patients"] = c["patients"]
        if several:
            row["rows"] = c["rows"]
        for s in sensitive:
            row[f"distinct {s}"] = c["distinct_sensitive"][s]
        out.append(row)
    return out


def _html_table(rows: list[dict]) -> str:
    e = html.escape
    if not rows:
        return "<p>(none)</p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{e(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{e(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def report_html_fragment(report: dict, include_smallest: bool = True) -> str:
    """An HTML <section> of the report (escaped, no script) for the owner's HTML report."""
    e = html.escape
    parts = ["<section class='anonymity-report'>",
             f"<h2>Anonymity risk: {e(report['title'])}</h2>",
             f"<p><strong>Data owner only.</strong> {e(report['note'])}</p>",
             f"<p>Generated {e(report['generated_at'])}. Privacy unit: {e(report['privacy_unit'])} "
             f"(classes count patients, not rows). Quasi-identifiers: {e(', '.join(report['quasi_identifiers']))}. "
             f"Sensitive attributes: {e(', '.join(report['sensitive']) or 'none')}.</p>",
             _html_table(measure_rows(report))]
    gen = report["versions"][1].get("generalisation", {})
    if gen:
        parts.append("<p>Generalisation: " + e("; ".join(f"{k}: {v}" for k, v in gen.items())) + ".</p>")
    parts.append("<ul>" + "".join(f"<li>{e(v)}</li>" for v in report["definitions"].values()) + "</ul>")
    if include_smallest:
        for v in report["versions"]:
            parts.append(f"<h3>Smallest classes, {e(v['label'].lower())}</h3>")
            parts.append(_html_table(smallest_rows(v, report["sensitive"])))
    parts.append("</section>")
    return "\n".join(parts)
