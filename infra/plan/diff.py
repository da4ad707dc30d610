"""Reading a rendered stack: a summary table, and the diff of two renderings as a PR comment."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.plan.model import Rendered


def summary(rendered: Rendered) -> str:
    """A readable table: one row per resource under its component, then counts per type."""
    rows = [("component", "type", "name", "protect")]
    for r in rendered.resources:
        rows.append(((r.parent or "").split("::")[-1] or "-", r.type, r.name, "yes" if r.protect else ""))
    rows[1:] = sorted(rows[1:])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"stack {rendered.stack}: {len(rendered.resources)} resources", ""]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for r in rendered.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    lines += ["", "count  type"] + [f"{n:5d}  {t}" for t, n in sorted(counts.items())]
    return "\n".join(lines) + "\n"


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _env_normalizer(envs: Sequence[str]) -> Any:
    alternatives = "|".join(re.escape(e) for e in sorted(set(envs)))
    pattern = re.compile(rf"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])")

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub("<env>", value)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value

    return norm


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    properties: tuple[tuple[str, Any, Any], ...]  # path, before, after


@dataclass(frozen=True, slots=True)
class Diff:
    before: str
    after: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[Change, ...]
    outputs: tuple[tuple[str, Any, Any], ...]
    unchanged: int
    normalized_env: bool

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.outputs)


def _props(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_flatten(dict(value)))


def _compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    fa, fb = _props(a), _props(b)
    return tuple((k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k))


def diff(before: Rendered, after: Rendered, label_before: str | None = None,
         label_after: str | None = None) -> Diff:
    """Resources added, removed and changed (with the changed properties) from ``before`` to ``after``.

    Comparing two different stacks, the stack names are normalized to ``<env>`` first so that the
    diff shows the configured differences, not every physical name."""
    normalize = before.stack != after.stack
    norm = _env_normalizer([before.stack, after.stack]) if normalize else (lambda v: v)
    a = {r.address: r for r in before.resources}
    b = {r.address: r for r in after.resources}
    changed = []
    unchanged = 0
    for address in sorted(set(a) & set(b)):
        ra, rb = a[address], b[address]
        view_a = {"inputs": norm(ra.inputs), "protect": ra.protect, "dependsOn": dict.fromkeys(ra.dependencies, True)}
        view_b = {"inputs": norm(rb.inputs), "protect": rb.protect, "dependsOn": dict.fromkeys(rb.dependencies, True)}
        props = _compare(view_a, view_b)
        if props:
            changed.append(Change(address, props))
        else:
            unchanged += 1
    return Diff(before=label_before or before.stack, after=label_after or after.stack,
                added=tuple(sorted(set(b) - set(a))), removed=tuple(sorted(set(a) - set(b))),
                changed=tuple(changed), outputs=_compare(norm(before.outputs), norm(after.outputs)),
                unchanged=unchanged, normalized_env=normalize)


def _cell(value: Any) -> str:
    if value is None:
        return "_(none)_"
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    text = text if len(text) <= 120 else text[:117] + "..."
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def markdown(d: Diff) -> str:
    """The diff as a pull-request comment."""
    lines = [f"## Stack diff: `{d.before}` → `{d.after}`", ""]
    if d.empty:
        return "\n".join([*lines, f"No changes ({d.unchanged} resources unchanged).", ""])
    lines.append(f"**{len(d.added)} to add, {len(d.changed)} to change, {len(d.removed)} to remove** "
                 f"({d.unchanged} unchanged).")
    if d.normalized_env:
        lines.append("")
        lines.append("_Stack names are shown as `<env>` so that only configured differences appear._")
    for title, items in (("Added", d.added), ("Removed", d.removed)):
        if items:
            lines += ["", f"### {title}", "", "| type | name |", "|---|---|"]
            lines += [f"| `{i.split('::')[0]}` | `{i.split('::', 1)[1]}` |" for i in items]
    if d.changed:
        lines += ["", "### Changed"]
        for change in d.changed:
            type_, name = change.address.split("::", 1)
            lines += ["", f"<details><summary><code>{name}</code> ({type_}): {len(change.properties)} "
                          f"propert{'y' if len(change.properties) == 1 else 'ies'}</summary>", "",
                      f"| property | {d.before} | {d.after} |", "|---|---|---|"]
            lines += [f"| `{path}` | {_cell(x)} | {_cell(y)} |" for path, x, y in change.properties]
            lines += ["", "</details>"]
    if d.outputs:
        lines += ["", "### Stack outputs", "", f"| output | {d.before} | {d.after} |", "|---|---|---|"]
        lines += [f"| `{path}` | {_cell(x)} | {_cell(y)} |" for path, x, y in d.outputs]
    return "\n".join(lines) + "\n"
