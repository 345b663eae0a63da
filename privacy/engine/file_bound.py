"""The per-patient bound check of a Parquet snapshot, file by file, from the patient id column alone.

The engine skips the `row_number()` window on a snapshot of immutable files only when no patient
has more than `max_rows_per_unit` rows in it (`privacy.engine.sql.SqlEngine._bound_holds`). One
`GROUP BY` over every patient id does that check, but at 10^8 distinct ids its hash table spills
past the engine's memory limit (54 s measured). When the files hold disjoint ranges of patient ids
(a table written in batches of patients), each patient's rows are in one file and the check splits
into one small check per file: read the id column, count runs after a sort (none if already
sorted). Overlapping ranges, ids that do not compare, or a file that cannot be read return None,
and the engine's own `GROUP BY` decides. Nothing here is released or shown: it only chooses
whether the engine must bound rows itself, and a missing id counts as one patient, as in SQL.
"""
from __future__ import annotations

import numpy as np


def _most_in_file(ids) -> int:
    """Most rows of one id among `ids` (a non-null Arrow array)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if pa.types.is_integer(ids.type):
        a = ids.to_numpy()
        if a.size < 2 or bool((a[1:] > a[:-1]).all()):
            return int(a.size > 0)
        a = np.sort(a)
        starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
        return int(np.diff(np.r_[starts, a.size]).max())
    counts = pc.value_counts(ids).field("counts")
    return int(pc.max(counts).as_py() or 0)


def most_rows_per_unit(snapshot, unit: str) -> int | None:
    """Most rows any patient has in the files of `snapshot` ((path, size, mtime) tuples), or None
    when the check does not split by file (the caller then asks the engine)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    most, missing, ranges = 0, 0, []
    try:
        for path, _size, _mtime in snapshot:
            col = pq.read_table(path, columns=[unit]).column(0)
            missing += col.null_count
            ids = pc.drop_null(col).combine_chunks()
            if len(ids) == 0:
                continue
            bounds = pc.min_max(ids)
            ranges.append((bounds["min"].as_py(), bounds["max"].as_py()))
            most = max(most, _most_in_file(ids))
        ranges.sort()
        if any(prev[1] >= nxt[0] for prev, nxt in zip(ranges, ranges[1:])):
            return None      # a patient may have rows in two files
    except (OSError, TypeError, KeyError, ValueError, pa.ArrowException):
        return None
    return max(most, missing)
