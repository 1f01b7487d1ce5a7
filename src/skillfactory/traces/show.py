"""Pretty-print traces in the terminal: tags coloured, verdicts green/red, glue phrases by their category.

Reading a few traces is the fastest check that a build did what was meant; colour makes the structure
(attempt, reflection, verdict, glue) visible at a glance. Model text is never parsed as rich markup.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from skillfactory.traces.outputs import trace_batches
from skillfactory.traces.phrases import classify_glue

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
    rows = (trace for batch in trace_batches(path) for trace in batch)
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
