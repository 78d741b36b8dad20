"""The SARIF 2.1.0 reporter, for GitHub code scanning and other SARIF viewers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from zdmigrate.lint._violation import Violation
from zdmigrate.lint.rules import all_rules

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
HELP_URI = "https://github.com/zdmigrate/zdmigrate/blob/main/docs/rules.md#{id}"


def render(violations: Sequence[Violation]) -> str:
    rules = all_rules()
    ids = sorted(rules)
    index = {rid: i for i, rid in enumerate(ids)}
    results: list[dict[str, Any]] = []
    for v in violations:
        result: dict[str, Any] = {
            "ruleId": v.rule,
            "ruleIndex": index.get(v.rule, 0),
            "level": "error" if v.is_error else "warning",
            "message": {"text": v.message},
        }
        if v.path:
            region = {"startLine": v.line} if v.line is not None else None
            location: dict[str, Any] = {"artifactLocation": {"uri": v.path}}
            if region:
                location["region"] = region
            result["locations"] = [{"physicalLocation": location}]
        if v.phase:
            result["properties"] = {"phase": v.phase}
        results.append(result)
    driver = {
        "name": "zdmigrate",
        "informationUri": "https://github.com/zdmigrate/zdmigrate",
        "rules": [
            {
                "id": rid,
                "name": rid,
                "shortDescription": {"text": rules[rid].summary},
                "fullDescription": {"text": f"{rules[rid].why} Safe way: {rules[rid].fix}"},
                "helpUri": HELP_URI.format(id=rid),
                "defaultConfiguration": {"level": rules[rid].severity.value},
                "properties": {"category": rules[rid].category.value},
            }
            for rid in ids
        ],
    }
    return json.dumps(
        {"$schema": SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]},
        indent=2,
    )
