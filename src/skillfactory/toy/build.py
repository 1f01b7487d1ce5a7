"""Build the toy base model (corpus -> tokenizer -> random Llama -> pretraining), cached on disk.

    >>> path = build_toy_model("micro", seed=0)      # built once, then a cache hit
    >>> AutoModelForCausalLM.from_pretrained(path)

The cache lives at ``$SKILLFACTORY_CACHE/toy/<preset>-s<seed>-<hash>`` (default root:
``platformdirs.user_cache_dir("skillfactory")``); the hash covers the preset and the corpus version, so changing
either builds a new model instead of reusing a stale one. A model is built in a temp folder next to its final
place and renamed when complete, so a crash never leaves a half model in the cache.

The package ships the quickstart's model already built (``prebuilt/tiny-s0-<hash>``, see ``prebuilt/README.md``):
when the cache lacks a model whose key matches a shipped folder, that folder is copied into the cache instead of
pretraining (~10 min on 2 cores). ``force=True`` (``skillfactory toy build --force``) still builds from scratch,
and a changed preset or corpus has another key, so it never picks up the shipped model.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from skillfactory.artifacts import cache_key, write_manifest
from skillfactory.records import atomic_write_text, write_jsonl
from skillfactory.toy.corpus import CORPUS_VERSION, build_corpus, prompt_phrases, tokenizer_texts
from skillfactory.toy.presets import ToyPreset, get_preset

BUILD_INFO = "toy_build.json"  # written last: its presence marks a complete build
PREBUILT_DIR = Path(__file__).resolve().parent / "prebuilt"  # models shipped in the package, named by model_key


def cache_root() -> Path:
    root = os.environ.get("SKILLFACTORY_CACHE")
    if root:
        return Path(root)
    import platformdirs

    return Path(platformdirs.user_cache_dir("skillfactory"))


def model_key(preset: ToyPreset, seed: int) -> str:
    return f"{preset.name}-s{seed}-{cache_key({'preset': preset.fingerprint(), 'corpus': CORPUS_VERSION})[:10]}"


def cached_path(preset: str = "tiny", seed: int = 0) -> Path:
    """Where ``build_toy_model(preset, seed)`` stores its model (whether built yet or not)."""
    return cache_root() / "toy" / model_key(get_preset(preset), seed)


def is_built(path: Path) -> bool:
    return (Path(path) / BUILD_INFO).exists()


def prebuilt_path(preset: str = "tiny", seed: int = 0) -> Path | None:
    """The complete model shipped in the package for (preset, seed), or None.

    Only a folder named exactly ``model_key(preset, seed)`` counts, so a preset or corpus change ignores it.
    """
    path = PREBUILT_DIR / model_key(get_preset(preset), seed)
    return path if is_built(path) else None


def build_toy_model(preset: str = "tiny", seed: int = 0, out: str | Path | None = None, force: bool = False,
                    quiet: bool = False) -> Path:
    """The toy model folder for (preset, seed), built if not cached (or if ``force``).

    Not cached but shipped in the package (``prebuilt_path``): the shipped model is copied into the cache instead
    of building it; ``force`` always builds from scratch.
    With ``out`` given the model is also copied there and ``out`` is returned; otherwise the cache path is.
    """
    cfg = get_preset(preset)
    final = cached_path(preset, seed)
    shipped = None if force or is_built(final) else prebuilt_path(preset, seed)
    if shipped is not None:
        _copy_prebuilt_into_cache(shipped, final, quiet)
    elif force or not is_built(final):
        _build_into_cache(cfg, seed, final, quiet)
    if out is None:
        return final
    out = Path(out)
    if out.resolve() != final.resolve():
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(final, tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    return out


def _build_into_cache(cfg: ToyPreset, seed: int, final: Path, quiet: bool) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        info = build_model_dir(cfg, seed, tmp, quiet=quiet)
        atomic_write_text(tmp / BUILD_INFO, json.dumps(info, indent=2) + "\n")
        _replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_prebuilt_into_cache(src: Path, final: Path, quiet: bool) -> None:
    """Copy a shipped model into the cache: into a temp sibling, then renamed, as a build is."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        # copyfile, not copy2: the package may be installed read-only, the cached copy must stay removable
        shutil.copytree(src, tmp, copy_function=shutil.copyfile,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for d in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            d.chmod(0o755)
        _replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"toy[{final.name}]: using the prebuilt model shipped in the package (copied to {final}; "
              f"`skillfactory toy build --force` rebuilds it)", file=sys.stderr, flush=True)


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)


def build_model_dir(cfg: ToyPreset, seed: int, out: Path, quiet: bool = False) -> dict:
    """Build a toy model into ``out`` (no caching); returns the build figures."""
    import torch
    from rich.console import Console

    from skillfactory.console import StepProgress, quiet_progress_bars
    from skillfactory.toy.model import build_model
    from skillfactory.toy.pretrain import encode_conversations, pretrain
    from skillfactory.toy.tokenizer import save_tokenizer, train_tokenizer

    console = Console(stderr=True, quiet=quiet)
    t0 = time.time()
    convs, stats = build_corpus(cfg.corpus, seed)
    n_warmup = cfg.corpus.warmup_drills + cfg.corpus.warmup_copies  # build_corpus puts them first
    t_corpus = time.time() - t0
    phrases = prompt_phrases(convs) if cfg.phrase_tokens else []
    tok = train_tokenizer(tokenizer_texts(convs), vocab_size=cfg.vocab_size, phrases=phrases,
                          across_spaces=cfg.merge_across_spaces)
    fast = save_tokenizer(tok, out, model_max_length=cfg.arch.max_position_embeddings)
    examples = encode_conversations(fast, [c.messages for c in convs])
    t_tok = time.time() - t0 - t_corpus
    model = build_model(cfg.arch, len(fast), fast.pad_token_id, fast.bos_token_id, fast.eos_token_id, seed=seed)
    n_params = sum(p.numel() for p in model.parameters())
    console.print(f"toy[{cfg.name}]: {len(convs)} conversations, {sum(len(e[0]) for e in examples)} tokens, "
                  f"{n_params / 1e6:.2f}M parameters", markup=False, highlight=False,
                  soft_wrap=True)  # "[micro]": not markup
    log: list[dict] = []
    with StepProgress("pretraining", total=1, unit="updates", metric="loss", console=console) as bar:
        train = pretrain(model, examples, cfg.train, seed, fast.pad_token_id, log=log, n_warmup=n_warmup,
                         progress=lambda done, total, loss: bar.update(done, value=loss, total=total))
    model.generation_config.pad_token_id = fast.pad_token_id
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.bos_token_id = fast.bos_token_id
    with torch.no_grad(), quiet_progress_bars():  # no "Writing model shards" bar
        model.save_pretrained(str(out))
    shown = convs[n_warmup:][:200]  # the mixed corpus, not the warm-up conversations that lead it
    write_jsonl(out / "corpus_sample.jsonl",
                [{"kind": c.kind, "task": c.task, "size": c.size, "variant": c.variant, "correct": c.correct,
                  "verdict": c.verdict, "error": c.error, "messages": c.messages} for c in shown])
    write_jsonl(out / "pretrain_log.jsonl", log)
    kinds = Counter(f"{c.kind}/{c.task}" for c in convs)
    info = {
        "preset": cfg.name, "seed": seed, "corpus_version": CORPUS_VERSION, "parameters": n_params,
        "vocab_size": len(fast), "conversations": dict(sorted(kinds.items())), "corpus_stats": stats.counts,
        "check_disagreements": stats.disagreements, "train": train,
        "seconds": {"corpus": round(t_corpus, 1), "tokenize": round(t_tok, 1), "train": train["seconds"],
                    "total": round(time.time() - t0, 1)},
    }
    write_manifest(out, "toy", config=cfg.fingerprint(), counts={"conversations": len(convs), "parameters": n_params},
                   seed=seed, extra={"build": info})
    console.print(f"toy[{cfg.name}] built in {info['seconds']['total']:.0f} s: {n_params / 1e6:.2f}M parameters, "
                  f"{train['tokens']} tokens at {train['tokens_per_s']} tok/s, final loss {train['final_loss_ema']}",
                  markup=False, highlight=False, soft_wrap=True)  # one line, also in a log file
    return info
