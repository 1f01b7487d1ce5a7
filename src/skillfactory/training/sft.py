"""SFT stage: fine-tune a model on silver traces with TRL's SFTTrainer, loss on the assistant turn only.

How it differs from a stock ``SFTTrainer`` run:
- **No silent truncation.** TRL cuts every example at ``max_length=1024`` by default, keeping the start: a long
  multi-attempt trace would lose its final answer and teach the model to ramble without concluding. We tokenize
  every trace first, skip (and count) those over the cap, and train at the longest kept length.
- **Loss on the assistant turn, for every family.** Each trace is tokenized as (generation prompt, trace text +
  the template's end-of-turn token) by ``skillfactory.chat`` - exactly the context the sampler gives the model -
  and trained with TRL's completion-only loss. No ``{% generation %}`` markers are needed (TRL ships none for
  Llama 3.1/3.2), the chat-template arguments (``enable_thinking``) are the recipe's, and every example is
  checked: its trained span ends with the end-of-turn token and holds no other special token.
- Presets: ``published`` is the paper's recipe for 1.5B-7B models (LR 1e-6, cosine, 5% warmup, 2 epochs);
  ``tiny`` is tuned on the toy model (a 1M-parameter model needs a ~1000x larger learning rate).

    >>> run_sft(SFTRunConfig(model="runs/toy", traces="runs/traces/traces.jsonl", out="runs/sft", preset="tiny"))
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from skillfactory.locking import locks_folder
from skillfactory.records import iter_jsonl
from skillfactory.training.common import (
    TRAIN_LOG, TrainingError, TrainRunConfig, final_loss_figures, finished_summary,
    load_model, load_tokenizer, peft_config, save_final, train, trainer_kwargs, write_results,
)

ROLES = ("user", "assistant")


class SFTRunConfig(TrainRunConfig):
    """SFT on chat traces. ``traces``: a traces.jsonl (records.Trace or any rows with ``messages``), a traces
    stage folder holding one, or a Hugging Face dataset folder (``save_to_disk``) with a ``messages`` column."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # published recipe; 16 traces per step (1 per device, accumulation derived) is our choice
        "published": dict(learning_rate=1e-6, lr_scheduler="cosine", warmup_ratio=0.05, epochs=2,
                          per_device_batch_size=1, global_batch_size=16),
        # toy model (0.8-5M parameters): tuned on the micro/tiny presets
        "tiny": dict(learning_rate=3e-3, lr_scheduler="cosine", warmup_ratio=0.05, epochs=3,
                     per_device_batch_size=16, global_batch_size=16),
    }

    traces: str
    #: more trace files trained on beside ``traces`` (same forms as ``traces``): e.g. the base model's own
    #: single-attempt traces on other tasks and sizes (the pipeline's ``replay`` section), so that SFT on one
    #: task's traces does not overwrite what the model could do elsewhere
    replay: list[str] = Field(default_factory=list)
    max_length: int | None = Field(None, gt=0)  # None: the longest kept trace (no truncation ever)
    max_length_cap: int = Field(16384, gt=0)  # traces longer than this (in tokens) are skipped and counted


def _message_rows(path: Path) -> list[tuple[str, list[dict[str, str]]]]:
    """(where, messages) for every row: where = "file:line" or "dataset row i", for error messages."""
    from skillfactory.traces.outputs import read_source

    path = read_source(path)  # a traces stage folder: its traces.jsonl, or its dataset
    if path.is_dir():
        from datasets import load_from_disk

        try:
            ds = load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as e:
            raise TrainingError(f"{path}: not a traces.jsonl nor a saved dataset folder ({e})") from None
        if "messages" not in ds.column_names:
            raise TrainingError(f"{path}: the dataset has no 'messages' column (columns: {', '.join(ds.column_names)})")
        return [(f"{path} row {i}", row) for i, row in enumerate(ds["messages"])]
    if not path.exists():
        raise TrainingError(f"traces file {path} does not exist; pass the traces stage's traces.jsonl with --traces")
    rows = []
    for lineno, obj in iter_jsonl(path, numbered=True):
        if "messages" not in obj:
            raise TrainingError(f"{path}:{lineno}: no 'messages' field; expected records.Trace rows")
        rows.append((f"{path}:{lineno}", obj["messages"]))
    return rows


def load_traces(traces: str, allow_empty: bool = False) -> list[list[dict[str, str]]]:
    """All trace chats, validated: roles user/assistant only, at least one assistant turn, string contents."""
    rows = _message_rows(Path(traces))
    if not rows and not allow_empty:
        raise TrainingError(f"{traces}: no traces to train on")
    out = []
    for where, messages in rows:
        if not isinstance(messages, list) or not messages:
            raise TrainingError(f"{where}: 'messages' must be a non-empty list of {{role, content}} turns")
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, dict) else None
            if role not in ROLES:
                raise TrainingError(f"{where}: message {i} has role {role!r}; SFT traces may only have 'user' and "
                                    "'assistant' turns (fix or drop this row)")
            if not isinstance(m.get("content"), str):
                raise TrainingError(f"{where}: message {i} has no text 'content'")
        if not any(m["role"] == "assistant" for m in messages):
            raise TrainingError(f"{where}: no assistant turn; there is nothing to learn from this row")
        if messages[-1]["role"] != "assistant":
            raise TrainingError(f"{where}: the last message must be the assistant's turn (the one SFT trains on)")
        out.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return out


def tokenize_traces(tok, chats: list[list[dict[str, str]]],
                    chat_template_kwargs: dict[str, Any]) -> tuple[list[dict[str, list[int]]], list[int]]:
    """Every chat as ``input_ids`` + ``completion_mask`` (see ``chat.tokenize_example``), and the indices of chats
    whose trained span would teach a wrong stop (a special token inside the text): those are skipped, counted."""
    from skillfactory.chat import (
        ChatTemplateError, end_of_turn, ends_with_end_of_turn, mask_problem, special_token_ids, tokenize_example,
    )

    try:
        eot = end_of_turn(tok, chat_template_kwargs)
    except ChatTemplateError as e:
        raise TrainingError(str(e)) from None
    specials = special_token_ids(tok)
    examples, bad = [], []
    for i, chat in enumerate(chats):
        ex = tokenize_example(tok, chat, chat_template_kwargs, eot)
        if not ends_with_end_of_turn(ex, eot):  # the template itself: no row would work
            raise TrainingError(f"trace {i}: the trained span does not end with the end-of-turn token "
                                f"({eot.text!r}); the chat template tokenizes its end of turn differently from how "
                                "it renders it")
        if mask_problem(ex, eot, specials) is not None:
            bad.append(i)
        examples.append(ex)
    return examples, bad


def select_by_length(lengths: list[int], cfg: SFTRunConfig, model_max: int | None) -> tuple[list[int], int]:
    """Indices of traces that fit, and the max length to train at. Over-long traces are skipped, never cut."""
    cap = min(cfg.max_length or cfg.max_length_cap, cfg.max_length_cap)
    if model_max:
        cap = min(cap, model_max)
    keep = [i for i, n in enumerate(lengths) if n <= cap]
    if not keep:
        raise TrainingError(f"all {len(lengths)} traces are longer than the max length {cap} tokens (shortest: "
                            f"{min(lengths)}); raise max_length_cap or use a model with a longer context")
    return keep, cfg.max_length or max(lengths[i] for i in keep)


@locks_folder("sft", rank_zero_only=True)  # the other ranks run under rank 0's lock
def run_sft(cfg: SFTRunConfig) -> dict[str, Any]:
    """Train, save ``OUT/final`` (model + tokenizer), the train log, summary.json and the manifest."""
    out = Path(cfg.out)
    inputs = {"model": cfg.model, "traces": cfg.traces, **({"replay": cfg.replay} if cfg.replay else {})}
    done = finished_summary(cfg, "sft", inputs)
    if done is not None:
        return done
    chats = load_traces(cfg.traces)  # first: bad traces fail before anything heavy is imported
    n_main = len(chats)
    for extra in cfg.replay:  # an empty replay file (the model solved none of those questions) only warns
        more = load_traces(extra, allow_empty=True)
        if not more:
            print(f"sft: replay file {extra} holds no traces; training on the others")
        chats += more
    tok = load_tokenizer(cfg.model)
    examples, special = tokenize_traces(tok, chats, cfg.chat_template_kwargs)

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from skillfactory.training.callbacks import TrainLogCallback, show_progress

    args = SFTConfig(
        **trainer_kwargs(cfg),
        completion_only_loss=True,  # the loss on completion_mask: the assistant text and its end-of-turn token
        packing=False,
        dataset_num_proc=None,
        **cfg.trainer_overrides,
    )
    model = load_model(cfg.model)  # after the config: ZeRO-3 then initialises the weights partitioned
    lengths = [len(ex["input_ids"]) for ex in examples]
    fits, max_length = select_by_length(lengths, cfg, getattr(model.config, "max_position_embeddings", None))
    refused = set(special)
    keep = [i for i in fits if i not in refused]
    skipped = len(chats) - len(fits)
    if skipped:
        print(f"sft: skipping {skipped} of {len(chats)} traces longer than {max_length} tokens (not truncating)")
    if special:
        print(f"sft: skipping {len(special)} traces whose text holds a special token (it would teach a wrong stop)")
    if not keep:
        raise TrainingError(f"{cfg.traces}: no trace left to train on ({skipped} too long, {len(special)} with "
                            "special tokens in their text)")
    args.max_length = max_length
    dataset = Dataset.from_dict({k: [examples[i][k] for i in keep] for k in ("input_ids", "completion_mask")})
    out.mkdir(parents=True, exist_ok=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok,
                         peft_config=peft_config(cfg.lora), callbacks=[TrainLogCallback(out / TRAIN_LOG, "sft")])
    show_progress(trainer, "sft", metric="loss")  # one bar on the console; every step in TRAIN_LOG
    t0 = time.time()
    result = train(trainer, cfg)
    final = save_final(trainer, tok, out, base_model=cfg.model)
    summary = {
        "stage": "sft",
        "final_model": str(final),
        "traces": len(chats),
        **({"replay_traces": len(chats) - n_main} if cfg.replay else {}),
        "trained_on": len(keep),
        "skipped_too_long": skipped,
        "skipped_special_tokens": len(special),
        "max_length": max_length,
        "longest_trace_tokens": max(lengths),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        **final_loss_figures(out / TRAIN_LOG),
        "seconds": round(time.time() - t0, 1),
    }
    counts = {k: summary[k] for k in ("traces", "trained_on", "skipped_too_long", "skipped_special_tokens", "steps")}
    return write_results(trainer, cfg, "sft", inputs, summary, counts)
