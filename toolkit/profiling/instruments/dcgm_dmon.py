"""Read the text ``dcgmi dmon`` prints: header, entity rows, stop trailer, error lines.

The format, as written by ``dcgmi/DeviceMonitor.cpp`` in NVIDIA/DCGM (3.x and 4.x):

    #Entity    GRACT        SMACT        TENSO        DRAMA
    ID
    GPU 0      N/A          N/A          N/A          N/A
    GPU 1      N/A          N/A          N/A          N/A
    GPU 0      0.912        0.850        0.701        0.300
    ...
    (header and unit line printed again after the 15th tick, then every 14 ticks)

    dmon was stopped due to receiving a signal

- The header is ``#Entity`` and one short name per field (``# Entity`` right-aligned in
  DCGM 2.x); the next line holds the units, starting ``ID`` (``Id`` in 2.x); the profiling
  ratios have no unit, so that line is usually just ``ID``.
- One "tick" prints one row per entity, then sleeps ``-d`` milliseconds. An entity is a type
  and an id: ``GPU 0``, ``GPU-I 1``, ``GPU-CI 2``, ``vGPU 3``, ``Switch 0``, ``CPU 0``,
  ``CPU Core 5``, ``CX 0``, ``GPU 0 LINK 3``.
- A value is a number with three decimals, ``N/A`` when DCGM has no value (always the case
  for the first tick after the host engine starts watching a profiling field), or blank
  when the field does not apply to that entity. Columns are left-aligned at the same offsets
  as the header, so a blank cell is found by position.
- Ctrl-C (SIGINT) ends the loop with ``dmon was stopped due to receiving a signal``
  (DCGM 4.x; ``... do to receiving a signal`` in 3.x, ``... signal.`` in 2.x). SIGTERM kills
  dcgmi with status 143 and no trailer.
- Errors: ``Error setting watches. Result: -6: Feature not supported`` (after the header, on
  stderr in 4.x), ``Error: Unable to connect to host engine. ...`` (stdout). dcgmi's exit
  status is the DCGM return code modulo 256 (-6 -> 250).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from toolkit.errors import InputError

NOT_AVAILABLE = "N/A"

_ENTITY_RE = re.compile(
    r"^ *(?P<type>GPU \d+ LINK|SW \d+ LINK|GPU-CI|GPU-I|vGPU|GPU|Switch|CPU Core|CPU|CX|LINK|UNKNOWN)"
    r" +(?P<id>\d+)(?= |$)"
)
_TRAILER_RE = re.compile(r"^dmon was stopped d(?:ue|o) to receiving a signal\.?$")
_UNIT_LINE_FIRST = ("ID", "Id")


# ----------------------------------------------------------------------------- errors dcgmi prints

DCGM_RETURN_REASONS: dict[int, str] = {
    -6: "a requested field is not supported on this GPU (one unsupported field makes dmon "
    "reject the whole -e list; the profiling fields 1001-1016 need a data-center or "
    "professional GPU, Volta or newer)",
    -17: "no permission to watch these fields",
    -21: "cannot connect to the DCGM host engine: is nv-hostengine (the nvidia-dcgm service) "
    "running?",
    -29: "profiling not permitted: the DCGM host engine does not run as root (in a container it "
    "also needs CAP_SYS_ADMIN)",
    -33: "the DCGM profiling module is not loaded (see `dcgmi modules -l`)",
    -34: "the GPU performance counters are in use by another client (Nsight Systems/Compute, "
    "another profiler, or profiling paused with `dcgmi profile --pause`)",
    -36: "profiling is not supported on this GPU",
    -37: "the DCGM profiling module returned an unrecoverable error",
    -38: "the requested profiling fields cannot be collected in one pass; watch fewer of them",
    -44: "the installed driver is too old for these fields",
}
"""Our explanation per DCGM return code (``dcgmReturn_t`` in ``dcgm_structs.h``)."""

# DCGM 2.x printed the message without the code; map its errorString() text back to the code.
_MESSAGE_CODES: tuple[tuple[str, int], ...] = (
    ("Feature not supported", -6),
    ("No permission", -17),
    ("Host engine connection invalid", -21),
    ("requires the host engine to be running as root", -29),
    ("Host engine is running as non-root", -29),
    ("module of DCGM that is not currently loaded", -33),
    ("affected resource is in use", -34),
    ("Profiling is not supported", -36),
    ("third-party Profiling module returned an unrecoverable error", -37),
    ("cannot be collected in a single pass", -38),
    ("newer driver version", -44),
)

_ERROR_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Error setting watches\. Result: (?:(?P<code>-\d+): )?(?P<msg>.*)"), "watch"),
    (re.compile(r"Unable to connect to host engine|unable to establish a connection"), "connect"),
    (re.compile(r"Error: unable to initialize DCGM"), "init"),
    (
        re.compile(
            r"Error getting values information\. ?Return:? ?(?:(?P<code>-\d+): )?(?P<msg>.*)"
        ),
        "values",
    ),
    (
        re.compile(
            r"No data returned from the hostengine|The field group or entity group is empty"
        ),
        "empty",
    ),
    (
        re.compile(r"Unable to get DCGM sorted entities\. Error: (?P<code>-\d+): (?P<msg>.*)"),
        "group",
    ),
    (re.compile(r"PARSE ERROR|Invalid value|Expected a numerical"), "usage"),
)


@dataclass(frozen=True)
class DcgmiError:
    """An error line dcgmi printed, with the DCGM return code when known and our reason."""

    line_no: int
    text: str
    code: int | None
    reason: str


def code_from_message(message: str) -> int | None:
    """The DCGM return code whose errorString() appears in ``message``, if any."""
    for needle, code in _MESSAGE_CODES:
        if needle.lower() in message.lower():
            return code
    return None


def explain_code(code: int | None, fallback: str) -> str:
    """Our reason for DCGM return ``code``; ``fallback`` (dcgmi's own words) when unknown."""
    if code is not None and code in DCGM_RETURN_REASONS:
        return DCGM_RETURN_REASONS[code]
    return fallback


def classify_error_line(line: str, line_no: int = 0) -> DcgmiError | None:
    """A :class:`DcgmiError` when ``line`` is an error dcgmi prints, else None."""
    text = line.strip()
    for pattern, kind in _ERROR_PATTERNS:
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        code = int(groups["code"]) if groups.get("code") else None
        message = groups.get("msg") or text
        if kind == "connect":
            code = -21
        elif code is None:
            code = code_from_message(message)
        reason = _reason_for(kind, code, message)
        return DcgmiError(line_no=line_no, text=text, code=code, reason=reason)
    return None


def _reason_for(kind: str, code: int | None, message: str) -> str:
    if kind == "watch":
        return explain_code(code, f"dcgmi could not watch the fields: {message}")
    if kind == "connect":
        return explain_code(code, message)
    if kind == "init":
        return "the DCGM library failed to initialize (is datacenter-gpu-manager installed?)"
    if kind == "values":
        return f"dcgmi failed while reading values: {explain_code(code, message)}"
    if kind == "empty":
        return "the DCGM host engine returned no entities or no data for these fields"
    if kind == "group":
        return f"dcgmi could not list the GPUs to watch: {explain_code(code, message)}"
    return f"dcgmi rejected its arguments: {message}"


def code_from_exit_status(returncode: int | None) -> int | None:
    """DCGM return code from dcgmi's exit status (the code modulo 256: 250 -> -6).

    None for 0, for deaths by signal (negative in Python) and for 128+signal exits.
    """
    if returncode is None or returncode <= 0:
        return None
    if returncode in (128 + 1, 128 + 2, 128 + 3, 128 + 9, 128 + 15):
        return None
    return returncode - 256 if returncode > 128 else None


# ----------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class DmonRow:
    """One entity row of one tick.

    ``values`` follow the header columns; None is ``N/A`` or a blank cell. ``time_s`` is when
    the line was read, in seconds since sampling started (live runs only; None for files).
    """

    line_no: int
    entity: str
    tick: int
    values: tuple[float | None, ...]
    time_s: float | None


@dataclass
class DmonText:
    """Everything read from one ``dcgmi dmon`` output."""

    columns: tuple[str, ...] = ()
    rows: list[DmonRow] = field(default_factory=list)
    stopped_by_signal: bool = False
    errors: list[DcgmiError] = field(default_factory=list)
    ignored_lines: list[tuple[int, str]] = field(default_factory=list)
    header_count: int = 0

    @property
    def ticks(self) -> int:
        """Number of ticks (one row per entity each) seen."""
        return self.rows[-1].tick + 1 if self.rows else 0


@dataclass
class _Header:
    columns: tuple[str, ...]
    starts: tuple[int, ...]  # character offset of each column in the header line


@dataclass
class _State:
    header: _Header | None = None
    previous_was_header: bool = False
    tick: int = -1
    tick_entities: set[str] = field(default_factory=set)
    header_since_row: bool = False


def read_dmon(lines: Sequence[str], line_times_s: Sequence[float] | None = None) -> DmonText:
    """Parse dmon output lines (without newlines) into rows, errors and the trailer flag.

    ``line_times_s`` (same length as ``lines``) stamps each row with its arrival time.
    Raises :class:`InputError` naming the line for a row before any header, a header whose
    columns change mid-file, a row with the wrong number of values or a value that is not a
    number or ``N/A``.
    """
    if line_times_s is not None and len(line_times_s) != len(lines):
        raise ValueError("line_times_s must have one time per line")
    out = DmonText()
    state = _State()
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        time_s = line_times_s[index] if line_times_s is not None else None
        _read_line(line, index + 1, time_s, state, out)
    return out


def _read_line(line: str, line_no: int, time_s: float | None, state: _State, out: DmonText) -> None:
    stripped = line.strip()
    if not stripped:
        return
    header = _parse_header(line)
    if header is not None:
        _accept_header(header, line_no, state, out)
        return
    was_header, state.previous_was_header = state.previous_was_header, False
    if was_header and stripped.split()[0] in _UNIT_LINE_FIRST:
        return
    if _TRAILER_RE.match(stripped):
        out.stopped_by_signal = True
        return
    error = classify_error_line(stripped, line_no)
    if error is not None:
        out.errors.append(error)
        return
    match = _ENTITY_RE.match(line)
    if match is None:
        out.ignored_lines.append((line_no, stripped))
        return
    out.rows.append(_parse_row(line, match, line_no, time_s, state))


def _parse_header(line: str) -> _Header | None:
    stripped = line.strip()
    if not stripped.startswith("#"):
        return None
    tokens = stripped.lstrip("#").split()
    if not tokens or tokens[0] != "Entity":
        return None
    columns = tuple(tokens[1:])
    starts: list[int] = []
    position = line.index("Entity") + len("Entity")
    for name in columns:
        position = line.index(name, position)
        starts.append(position)
        position += len(name)
    return _Header(columns=columns, starts=tuple(starts))


def _accept_header(header: _Header, line_no: int, state: _State, out: DmonText) -> None:
    if state.header is not None and header.columns != state.header.columns:
        raise InputError(
            f"line {line_no}: header columns changed from {' '.join(state.header.columns)} to "
            f"{' '.join(header.columns)}; expected one dcgmi dmon run per file"
        )
    if not header.columns:
        raise InputError(f"line {line_no}: '#Entity' header names no fields")
    if state.header is None:
        out.columns = header.columns
    state.header = header
    state.previous_was_header = True
    state.header_since_row = True
    out.header_count += 1


def _parse_row(
    line: str, match: re.Match[str], line_no: int, time_s: float | None, state: _State
) -> DmonRow:
    if state.header is None:
        raise InputError(
            f"line {line_no}: data row before any '#Entity' header; expected dcgmi dmon output"
        )
    entity = f"{' '.join(match['type'].split())} {match['id']}"
    if state.tick < 0 or state.header_since_row or entity in state.tick_entities:
        state.tick += 1
        state.tick_entities = set()
        state.header_since_row = False
    state.tick_entities.add(entity)
    cells = _split_cells(line, match.end(), state.header, line_no)
    values = tuple(
        _parse_cell(cell, state.header.columns[i], line_no) for i, cell in enumerate(cells)
    )
    return DmonRow(line_no=line_no, entity=entity, tick=state.tick, values=values, time_s=time_s)


def _split_cells(line: str, start: int, header: _Header, line_no: int) -> list[str]:
    """The value cells of a row: by whitespace when complete, else by header position."""
    count = len(header.columns)
    tokens = line[start:].split()
    if len(tokens) == count:
        return tokens
    if len(tokens) < count and len(line) > header.starts[0] >= start:
        bounds = [*header.starts, len(line)]
        cells = [line[bounds[i] : bounds[i + 1]].strip() for i in range(count)]
        lead = line[start : header.starts[0]].strip()
        if not lead and all(len(cell.split()) <= 1 for cell in cells):
            return cells
    raise InputError(
        f"line {line_no}: expected {count} values ({' '.join(header.columns)}), "
        f"got {len(tokens)}: {line.strip()!r}"
    )


def _parse_cell(cell: str, column: str, line_no: int) -> float | None:
    if cell in ("", NOT_AVAILABLE):
        return None
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"line {line_no}: {column} value {cell!r} is not a number or N/A")
    return value
