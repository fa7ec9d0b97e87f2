"""Plan linter: grounding gates for implementation and experiment plans written in markdown.

``python -m toolkit.plan lint PLAN.md`` reports findings (code, severity, line, message);
``python -m toolkit.plan rules`` lists the rules. Modules: :mod:`.document` (markdown structure
and how steps are recognised), :mod:`.rules` (codes and docs), :mod:`.grounding` (citations,
quotes, dry run), :mod:`.deps` (pins), :mod:`.vram`, :mod:`.throughput` (MFU, LoRA),
:mod:`.text_rules` (vague phrases, stubs, success criteria, launch lines), :mod:`.lint`.
"""

from toolkit.plan.lint import lint_file, lint_text
from toolkit.plan.rules import RULES, Finding, Rule

__all__ = ["RULES", "Finding", "Rule", "lint_file", "lint_text"]
