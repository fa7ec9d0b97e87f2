"""Training-log analysis: readers for common trainer logs, detectors, run comparison, plots.

    from toolkit.logs import read_log, analyze, compare
    report = analyze(read_log("trainer_state.json"))
    result = compare(read_log("run.jsonl"), read_log("baseline.jsonl"), tolerance=0.1)

CLI: ``python -m toolkit.logs analyze|compare|summary`` (see ``--help``).
"""

from toolkit.logs.compare import Comparison, MetricDeviation, compare
from toolkit.logs.config import Thresholds, load_thresholds
from toolkit.logs.detectors import Cause, Finding, Report, analyze
from toolkit.logs.readers import detect_format, read_log
from toolkit.logs.series import Run, Series, canonical_role

__all__ = [
    "Cause",
    "Comparison",
    "Finding",
    "MetricDeviation",
    "Report",
    "Run",
    "Series",
    "Thresholds",
    "analyze",
    "canonical_role",
    "compare",
    "detect_format",
    "load_thresholds",
    "read_log",
]
