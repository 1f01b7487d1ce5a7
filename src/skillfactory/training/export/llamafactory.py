"""Export SFT traces for LLaMA-Factory: a sharegpt dataset, its ``dataset_info.json`` entry, and a training YAML
with the published SFT settings (full fine-tune, LR 1e-6, cosine, 5% warmup, 2 epochs, 16k context).

LLaMA-Factory masks the prompt by default (``train_on_prompt: false``), i.e. loss on the assistant turn only,
the same as our TRL stage. Run with ``llamafactory-cli train OUT/sft.yaml`` (multi-GPU: ``FORCE_TORCHRUN=1``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from skillfactory.locking import locks_folder
from skillfactory.records import atomic_write_text

DATASET_NAME = "skillfactory_traces"
DATASET_FILE = f"{DATASET_NAME}.json"
_FROM = {"user": "human", "assistant": "gpt"}


class LlamaFactoryExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traces: str  # traces.jsonl, a traces stage folder, or a saved dataset folder (as for `skillfactory sft`)
    out: str
    model: str = "Qwen/Qwen2.5-1.5B-Instruct"  # model_name_or_path in the YAML
    template: str = "qwen"  # LLaMA-Factory chat template name matching the model
    cutoff_len: int = Field(16384, gt=0)  # published: long context, so multi-attempt traces are not cut
    deepspeed: str | None = None  # e.g. examples/deepspeed/ds_z3_config.json of LLaMA-Factory


def sharegpt(chats: list[list[dict[str, str]]]) -> list[dict[str, Any]]:
    """Chats in LLaMA-Factory's sharegpt layout (``conversations`` of ``from``/``value``)."""
    return [{"conversations": [{"from": _FROM[m["role"]], "value": m["content"]} for m in chat]} for chat in chats]


def training_yaml(cfg: LlamaFactoryExportConfig) -> dict[str, Any]:
    """The published SFT recipe as a LLaMA-Factory config."""
    train = {
        "model_name_or_path": cfg.model,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full",
        "dataset": DATASET_NAME,
        "dataset_dir": str(Path(cfg.out).resolve()),
        "template": cfg.template,
        "cutoff_len": cfg.cutoff_len,
        "overwrite_cache": True,
        "preprocessing_num_workers": 8,
        "output_dir": str((Path(cfg.out) / "saves").resolve()),
        "logging_steps": 1,
        "save_steps": 100,
        "plot_loss": True,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 16,
        "learning_rate": 1.0e-6,
        "num_train_epochs": 2.0,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.05,
        "bf16": True,
        "report_to": "none",
    }
    if cfg.deepspeed:
        train["deepspeed"] = cfg.deepspeed
    return train


@locks_folder("export llamafactory")
def export_llamafactory(cfg: LlamaFactoryExportConfig) -> dict[str, Any]:
    """Write OUT/skillfactory_traces.json, OUT/dataset_info.json, OUT/sft.yaml, OUT/summary.json."""
    from skillfactory.artifacts import write_manifest
    from skillfactory.training.sft import load_traces

    chats = load_traces(cfg.traces)  # same validation as the SFT stage (roles user/assistant only)
    out = Path(cfg.out)
    atomic_write_text(out / DATASET_FILE, json.dumps(sharegpt(chats), ensure_ascii=False, indent=1) + "\n")
    info = {DATASET_NAME: {"file_name": DATASET_FILE, "formatting": "sharegpt",
                           "columns": {"messages": "conversations"}}}
    atomic_write_text(out / "dataset_info.json", json.dumps(info, indent=2) + "\n")
    atomic_write_text(out / "sft.yaml", yaml.safe_dump(training_yaml(cfg), sort_keys=False))
    summary = {"stage": "export_llamafactory", "examples": len(chats),
               "files": [DATASET_FILE, "dataset_info.json", "sft.yaml"],
               "command": f"llamafactory-cli train {out / 'sft.yaml'}"}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_manifest(out, "export_llamafactory", config=cfg, inputs={"traces": cfg.traces},
                   counts={"examples": len(chats)})
    return summary
