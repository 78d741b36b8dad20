"""`zdmigrate lint --list-rules` and `--explain RULE`: the rules described from their own metadata."""

from __future__ import annotations

import json

from zdmigrate.lint.rules import Rule, all_rules, get_rule


def _policy(rule: Rule) -> str:
    return {
        "destructive": "error in every phase but contract",
        "lock": "error in every phase",
        "correctness": f"{rule.severity.value} in every phase",
        "hygiene": "warning, opt-in",
    }[rule.category.value]


def rules_list(output_format: str = "text") -> str:
    rules = all_rules().values()
    if output_format == "json":
        return json.dumps({"rules": [_as_dict(r) for r in rules]}, indent=2)
    width = max(len(r.id) for r in rules)
    lines = [f"{'rule'.ljust(width)}  {'category'.ljust(11)}  summary"]
    for r in rules:
        opt = " (opt-in)" if not r.enabled_by_default else ""
        lines.append(f"{r.id.ljust(width)}  {r.category.value.ljust(11)}  {r.summary}{opt}")
    return "\n".join(lines)


def explain(rule_id: str, output_format: str = "text") -> str:
    rule = get_rule(rule_id)
    if output_format == "json":
        return json.dumps(_as_dict(rule), indent=2)
    lines = [
        f"{rule.id} ({rule.category.value}: {_policy(rule)})",
        "",
        f"What: {rule.summary}.",
        f"Why: {rule.why}",
        f"Safe way: {rule.fix}",
    ]
    for title, examples in (("Bad", rule.bad), ("Good", rule.good)):
        for ex in examples:
            note = f" (phase {ex.phase.value}, PostgreSQL {ex.pg_version})"
            lines += ["", f"{title}{note}:", *("    " + line for line in ex.sql.splitlines())]
    return "\n".join(lines)


def _as_dict(rule: Rule) -> dict[str, object]:
    return {
        "id": rule.id, "category": rule.category.value, "severity": rule.severity.value,
        "enabled_by_default": rule.enabled_by_default, "policy": _policy(rule),
        "summary": rule.summary, "why": rule.why, "fix": rule.fix,
    }


def rules_markdown() -> str:
    """docs/rules.md, generated from the rules themselves (a test keeps the file in sync)."""
    rules = list(all_rules().values())
    out = [
        "# Lint rules",
        "",
        "Generated from the rules themselves (`zdmigrate lint --explain RULE` prints the same);",
        "a test checks that this file is current and that every example gives the result shown.",
        "",
        "How severe a rule is depends on its category and on the phase the statement runs in:",
        "",
        "| category | expand, dual-write, backfill, switch-read | contract |",
        "|---|---|---|",
        "| destructive | error | allowed (the fleet check gates contract) |",
        "| lock | error | error |",
        "| correctness | error (a few: warning) | error (a few: warning) |",
        "| hygiene (opt-in) | warning | warning |",
        "",
        "Turn opt-in rules on with `enable = [\"hygiene\"]` (or rule ids) in",
        "`[tool.zdmigrate.lint]`; see [lint.md](lint.md).",
        "",
        "| rule | category | summary |",
        "|---|---|---|",
        *(f"| [{r.id}](#{r.id}) | {r.category.value} | {r.summary} |" for r in rules),
        "",
    ]
    for r in rules:
        opt = ", opt-in" if not r.enabled_by_default else ""
        out += [
            f"## {r.id}",
            "",
            f"*{r.category.value}: {_policy(r)}{opt}*",
            "",
            f"**What:** {r.summary}.",
            "",
            f"**Why:** {r.why}",
            "",
            f"**Safe way:** {r.fix}",
            "",
        ]
        for title, verb, examples in (("Bad", "reported", r.bad), ("Safe", "not reported", r.good)):
            for ex in examples:
                out += [
                    f"{title} ({verb} in phase {ex.phase.value}, PostgreSQL {ex.pg_version}):",
                    "",
                    "```sql",
                    *ex.sql.splitlines(),
                    "```",
                    "",
                ]
    return "\n".join(out)
