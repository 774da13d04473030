"""Read a JSONL trace of arrival times, with `file:line` errors.

One JSON object per line, `{"arrival_s": 0.25}`: seconds from the start of the run,
finite, non-negative and in order (equal times are arrivals together). Blank lines are
skipped; any other key is refused, so a misspelt one is not silently ignored.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from llenergymeasure.errors import ConfigError

MAX_TRACE_BYTES = 256 * 2**20
TRACE_KEY = "arrival_s"


def read_trace(path: Path) -> list[float]:
    """The arrival times of a trace file, in seconds from the start.

    Raises:
        ConfigError: `load.trace: FILE:LINE: problem`, or naming the file when it is
            missing, unreadable, too large or empty.

    """
    label = f"load.trace: {path}"
    if not path.is_file():
        raise ConfigError(f"{label}: trace file not found")
    if path.stat().st_size > MAX_TRACE_BYTES:
        raise ConfigError(f"{label}: larger than {MAX_TRACE_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{label}: not UTF-8 text (invalid byte at offset {e.start})") from e
    except OSError as e:
        raise ConfigError(f"{label}: cannot be read: {e.strerror}") from e
    times: list[float] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            times.append(_arrival(line, f"{label}:{line_no}", times[-1] if times else 0.0))
    if not times:
        raise ConfigError(f'{label}: holds no arrivals; give one {{"{TRACE_KEY}": ...}} a line')
    return times


def _arrival(line: str, where: str, previous_s: float) -> float:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: invalid JSON ({e.msg})") from e
    if not isinstance(record, dict) or TRACE_KEY not in record:
        raise ConfigError(f'{where}: expected an object like {{"{TRACE_KEY}": 0.25}}')
    unknown = sorted(set(record) - {TRACE_KEY})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; only {TRACE_KEY!r} is read")
    value = record[TRACE_KEY]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: {TRACE_KEY} must be a finite number of seconds")
    if value < 0:
        raise ConfigError(f"{where}: {TRACE_KEY} is negative ({value:g})")
    if value < previous_s:
        raise ConfigError(
            f"{where}: {TRACE_KEY} {value:g} comes before the previous line's {previous_s:g}; "
            "sort the trace by arrival"
        )
    return float(value)
