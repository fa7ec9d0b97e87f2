"""Table, JSON and SARIF 2.1.0 renderings of a check result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.cli import render_table
from toolkit.static.engine import Finding

SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    parse_errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "findings": [
                {
                    "code": f.code,
                    "name": f.name,
                    "severity": f.severity,
                    "path": f.path,
                    "line": f.line,
                    "col": f.col,
                    "message": f.message,
                    "fix": f.fix,
                }
                for f in self.findings
            ],
            "files_checked": self.files_checked,
            "parse_errors": self.parse_errors,
        }


def render_text(result: CheckResult) -> str:
    rows = [
        (f"{f.path}:{f.line}:{f.col}", f.code, f.severity, f.message, f.fix)
        for f in result.findings
    ]
    out = []
    if rows:
        out.append(render_table(("location", "code", "severity", "message", "fix"), rows))
    for pe in result.parse_errors:
        out.append(f"{pe['path']}: parse error: {pe['error']}")
    counts = {
        s: sum(1 for f in result.findings if f.severity == s) for s in ("error", "warning", "info")
    }
    out.append(
        f"{result.files_checked} file(s) checked: {counts['error']} error(s), "
        f"{counts['warning']} warning(s), {counts['info']} info, "
        f"{len(result.parse_errors)} parse error(s)"
    )
    return "\n".join(out)


def to_sarif(result: CheckResult) -> dict[str, Any]:
    from toolkit.static.catalogue import all_rules

    rules = all_rules()
    index = {r.code: i for i, r in enumerate(rules)}
    sarif_rules = [
        {
            "id": r.code,
            "name": r.name,
            "shortDescription": {"text": r.name},
            "fullDescription": {"text": r.doc},
            "help": {"text": f"{r.doc}\n\nFix: {r.fix}"},
            "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
            "properties": {"frameworks": list(r.frameworks), "area": r.area},
        }
        for r in rules
    ]
    results = []
    for f in result.findings:
        uri = Path(f.path).as_posix()
        results.append(
            {
                "ruleId": f.code,
                "ruleIndex": index.get(f.code, -1),
                "level": SARIF_LEVEL[f.severity],
                "message": {"text": f"{f.message} Fix: {f.fix}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri},
                            "region": {"startLine": f.line, "startColumn": f.col},
                        }
                    }
                ],
            }
        )
    notifications = [
        {
            "level": "error",
            "message": {"text": f"parse error: {pe['error']}"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": Path(pe["path"]).as_posix()}}}
            ],
        }
        for pe in result.parse_errors
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "labcoat-static",
                "informationUri": "https://github.com/labcoat/labcoat",
                "version": "0.1.0",
                "rules": sarif_rules,
            }
        },
        "results": results,
    }
    if notifications:
        run["invocations"] = [
            {"executionSuccessful": True, "toolExecutionNotifications": notifications}
        ]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
