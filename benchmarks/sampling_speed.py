"""Generated tokens/s of the ``hf`` backend vs a loop of one-prompt-at-a-time ``model.generate``.

Both sides sample the same number of completions (countdown prompts in the 4 variants, ``--n`` each) from the
same tiny random model (hidden 128, 4 layers, built here from a config: no download), fp32 on CPU, plain
temperature-1 sampling with ``top_k=0``. A random model rarely emits EOS; tokens/s is computed from the tokens
each side actually generated, so an early stop cannot flatter either side.

    python benchmarks/sampling_speed.py                      # default sizes, torch's thread count
    python benchmarks/sampling_speed.py --threads 1 --batch-sizes 8 64 128

Prints one line per configuration and the speed-up of the best batch size over the loop (goal: >= 5x).
"""

from __future__ import annotations

import argparse
import tempfile
import time


def build_model(out: str, seed: int) -> str:
    from skillfactory.prompting import REFLECTION_TEMPLATE, VARIANT_INSTRUCTIONS
    from skillfactory.tasks import get_task
    from skillfactory.toy.model import ArchConfig, build_random_model_dir

    task = get_task("countdown", num_args=3)
    texts = [task.prompt(q, "original") + f"\n<answer>{q.gold}</answer>" for q in task.generate(200, seed=seed)]
    texts += list(VARIANT_INSTRUCTIONS.values()) + [REFLECTION_TEMPLATE]
    build_random_model_dir(out, texts, arch=ArchConfig(hidden_size=128, num_layers=4, num_heads=4,
                                                       intermediate_size=384), vocab_size=512, seed=seed)
    return out


def requests(n_questions: int, seed: int):
    from skillfactory.generation import GenerationRequest
    from skillfactory.prompting import VARIANTS
    from skillfactory.tasks import get_task

    task = get_task("countdown", num_args=3)
    return [GenerationRequest([{"role": "user", "content": task.prompt(q, v)}])
            for q in task.generate(n_questions, seed=seed + 1) for v in VARIANTS]


def run_backend(model_dir: str, reqs, n: int, max_new_tokens: int, batch_size: int) -> tuple[int, int, float]:
    from skillfactory.generation import SamplingParams, get_backend

    backend = get_backend("hf", model_dir, batch_size=batch_size)
    t0 = time.perf_counter()
    out = backend.generate(reqs, SamplingParams(n=n, max_new_tokens=max_new_tokens, seed=0))
    dt = time.perf_counter() - t0
    return sum(len(r) for r in out), sum(c.n_tokens for r in out for c in r), dt


def run_loop(model_dir: str, reqs, n: int, max_new_tokens: int) -> tuple[int, int, float]:
    """The naive way: one prompt, one completion per ``model.generate`` call."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillfactory.generation.common import render_prompt

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    torch.manual_seed(0)
    completions = tokens = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for r in reqs:
            ids = tok(render_prompt(tok, r), add_special_tokens=False, return_tensors="pt")
            for _ in range(n):
                seq = model.generate(**ids, do_sample=True, top_k=0, temperature=1.0, max_new_tokens=max_new_tokens,
                                     pad_token_id=tok.pad_token_id)
                gen = seq[0, ids["input_ids"].shape[1]:].tolist()
                tokens += gen.index(tok.eos_token_id) + 1 if tok.eos_token_id in gen else len(gen)
                completions += 1
    return completions, tokens, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=16, help="countdown questions (x 4 prompt variants)")
    ap.add_argument("--n", type=int, default=2, help="completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64, 128])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(tmp, args.seed)
        reqs = requests(args.questions, args.seed)
        print(f"model: hidden 128, 4 layers, fp32, {torch.get_num_threads()} thread(s); {len(reqs)} prompts x "
              f"{args.n} completions x <= {args.max_new_tokens} new tokens")
        rates = {}
        for bs in args.batch_sizes:
            c, t, dt = run_backend(model_dir, reqs, args.n, args.max_new_tokens, bs)
            rates[bs] = t / dt
            print(f"hf backend, batch_size {bs:>4}: {c} completions, {t} tokens in {dt:6.1f} s = {t / dt:7.0f} tokens/s")
        c, t, dt = run_loop(model_dir, reqs, args.n, args.max_new_tokens)
        loop = t / dt
        print(f"loop of single model.generate:  {c} completions, {t} tokens in {dt:6.1f} s = {loop:7.0f} tokens/s")
        best = max(rates, key=rates.get)
        print(f"speed-up: {rates[best] / loop:.1f}x (hf backend, batch_size {best}, vs the one-at-a-time loop)")


if __name__ == "__main__":
    main()
