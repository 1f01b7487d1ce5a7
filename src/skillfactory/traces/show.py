"""Pretty-print traces in the terminal: tags coloured, verdicts green/red, glue phrases by their category.

Reading a few traces is the fastest check that a build did what was meant; colour makes the structure
(attempt, reflection, verdict, glue) visible at a glance. Model text is never parsed as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from skillfactory.traces.outputs import dataset_rows, read_source
from skillfactory.traces.phrases import classify_glue
from skillfactory.traces.sources import TraceInputError

TAG_STYLES: dict[str, str] = {
    r"</?think>": "bold magenta",
    r"</?sample>": "bold cyan",
    r"</?reflect>": "bold yellow",
    r"</?answer>": "bold blue",
    r"<verdict>\s*Correct\s*</verdict>": "bold green",
    r"<verdict>\s*Incorrect\s*</verdict>": "bold red",
}
GLUE_STYLES: dict[str, str] = {
    "after_correct": "italic green", "after_incorrect": "italic red", "backtrack": "italic bright_red",
    "confirm": "italic bright_green", "generic": "italic", "ending": "italic blue",
}


def styled(content: str) -> Text:
    """One message's content as rich Text with tags and glue lines styled."""
    text = Text()
    for i, line in enumerate(content.split("\n")):
        if i:
            text.append("\n")
        kind = classify_glue(line) if line and not line.startswith("<") else None
        text.append(line, style=GLUE_STYLES.get(kind, "") if kind else "")
    for pattern, style in TAG_STYLES.items():
        text.highlight_regex(pattern, style)
    return text


def read_traces(path: str | Path, n: int, start: int = 0, fmt: str | None = None) -> list[dict]:
    """Up to ``n`` traces from a traces.jsonl (or a traces folder: its JSONL, or its dataset when the build
    wrote no JSONL), skipping ``start``, of one format."""
    path = read_source(path)
    if path.is_dir() and (path / "state.json").exists():
        rows = (trace for batch in dataset_rows(path) for trace in batch)
    elif path.is_dir() or not path.exists():
        where = path / "traces.jsonl" if path.is_dir() else path
        raise TraceInputError(f"{where}: file not found (expected traces.jsonl from `skillfactory traces build`)")
    else:
        rows = _jsonl_traces(path)
    out: list[dict] = []
    seen = 0
    for trace in rows:
        if fmt is not None and trace.get("format") != fmt:
            continue
        seen += 1
        if seen > start:
            out.append(trace)
        if len(out) >= n:
            break
    return out


def _jsonl_traces(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                trace = json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(trace, dict) or "messages" not in trace:
                raise TraceInputError(f"{path}:{lineno}: field 'messages' missing (expected a trace record)")
            yield trace


def show_traces(path: str | Path, n: int = 3, start: int = 0, fmt: str | None = None,
                console: Console | None = None) -> int:
    """Print traces as panels (user turn dimmed, assistant turn styled); returns how many were shown."""
    console = console or Console()
    traces = read_traces(path, n, start, fmt)
    for t in traces:
        body = []
        for m in t["messages"]:
            label = Text(f"{m['role']}:", style="bold")
            content = Text(m["content"], style="dim") if m["role"] == "user" else styled(m["content"])
            body += [label, content, Text("")]
        title = f"{t.get('id', '?')}  [{t.get('format', '?')}]  attempts={t.get('n_attempts', '?')}"
        ok = t.get("final_correct")
        subtitle = None if ok is None else ("final answer correct" if ok else "final answer WRONG")
        console.print(Panel(Group(*body[:-1]), title=title, subtitle=subtitle, title_align="left"))
    if not traces:
        console.print("no traces" + (f" of format {fmt!r}" if fmt else ""))
    return len(traces)
