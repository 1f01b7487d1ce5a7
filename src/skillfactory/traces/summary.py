"""What a trace build made and what it dropped: counts per format, skip reasons, token-length percentiles.

The summary holds no timings, so the same inputs and seed give a byte-identical ``summary.json`` (timings
go to the manifest).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from skillfactory.traces.sources import TraceInputError

PERCENTILES = (50, 90, 95, 99)


class Tally:
    """Counts gathered while building: traces per format and length, skips per format and reason."""

    def __init__(self) -> None:
        self.per_format: Counter = Counter()
        self.blocks: dict[str, Counter] = defaultdict(Counter)
        self.skipped: dict[str, Counter] = defaultdict(Counter)
        self.final_correct = 0
        self.questions = 0
        self.with_traces = 0
        self.dropped: Counter = Counter()
        self._made = 0
        self._first_skip: str | None = None

    def start_question(self) -> None:
        self.questions += 1
        self._made, self._first_skip = 0, None

    def end_question(self) -> None:
        if self._made:
            self.with_traces += 1
        else:
            self.dropped[self._first_skip or "no_format_requested"] += 1

    def made(self, fmt: str, n_blocks: int, final_correct: bool) -> None:
        self.per_format[fmt] += 1
        self.blocks[fmt][n_blocks] += 1
        self.final_correct += int(final_correct)
        self._made += 1

    def skip(self, fmt: str, reason: str) -> None:
        self.skipped[fmt][reason] += 1
        if self._first_skip is None:
            self._first_skip = reason

    def merge(self, other: Tally) -> None:
        """Add the counts of another tally (of other questions: built in a worker process)."""
        self.per_format.update(other.per_format)
        for fmt, counts in other.blocks.items():
            self.blocks[fmt].update(counts)
        for fmt, counts in other.skipped.items():
            self.skipped[fmt].update(counts)
        self.dropped.update(other.dropped)
        self.final_correct += other.final_correct
        self.questions += other.questions
        self.with_traces += other.with_traces

    def as_dict(self) -> dict[str, Any]:
        total = sum(self.per_format.values())
        return {
            "traces": total,
            "per_format": dict(sorted(self.per_format.items())),
            "blocks_per_trace": {f: {str(n): c for n, c in sorted(cnt.items())} for f, cnt in sorted(self.blocks.items())},
            "final_correct": self.final_correct,
            "questions": {"total": self.questions, "with_traces": self.with_traces,
                          "dropped": dict(sorted(self.dropped.items()))},
            "skipped": {f: dict(sorted(cnt.items())) for f, cnt in sorted(self.skipped.items())},
        }


def percentiles(values: list[int]) -> dict[str, float]:
    """Nearest-rank percentiles plus mean and max (``{}`` for no values)."""
    if not values:
        return {}
    xs = sorted(values)
    out: dict[str, float] = {f"p{p}": float(xs[min(len(xs) - 1, max(0, -(-p * len(xs) // 100) - 1))]) for p in PERCENTILES}
    out["mean"] = round(sum(xs) / len(xs), 2)
    out["max"] = float(xs[-1])
    return out


def token_lengths(rows: Iterable[list[dict[str, Any]]], tokenizer_path: str) -> dict[str, Any]:
    """Token counts of whole chats (the tokenizer's chat template when it has one) and of assistant turns,
    as percentiles overall and per format: what SFT's ``max_length`` must hold. ``rows``: batches of traces as
    dicts (``outputs.trace_batches``: the JSONL, or the dataset when only that was written)."""
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer_path)
    except (OSError, ValueError) as e:
        raise TraceInputError(f"tokenizer {tokenizer_path!r}: cannot load it ({e}); give a local model folder") from None
    chat: dict[str, list[int]] = defaultdict(list)
    assistant: dict[str, list[int]] = defaultdict(list)
    for batch in rows:
        convs = [t["messages"] for t in batch]
        if tok.chat_template:
            texts = tok.apply_chat_template(convs, tokenize=False)
        else:
            texts = ["\n".join(m["content"] for m in c) for c in convs]
        answers = [c[-1]["content"] for c in convs]
        n_chat = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        n_ans = [len(ids) for ids in tok(answers, add_special_tokens=False)["input_ids"]]
        for t, a, b in zip(batch, n_chat, n_ans):
            for key in ("all", t["format"]):
                chat[key].append(a)
                assistant[key].append(b)
    return {
        "tokenizer": tokenizer_path,
        "chat": {k: percentiles(v) for k, v in sorted(chat.items())},
        "assistant": {k: percentiles(v) for k, v in sorted(assistant.items())},
    }
