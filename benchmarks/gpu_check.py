"""GPU acceptance check: every GPU stage of the toolkit once, on one GPU, in a few minutes.

    python benchmarks/gpu_check.py                      # a tiny random Qwen2.5-architecture model, built here
    python benchmarks/gpu_check.py --model /models/Qwen2.5-1.5B-Instruct --out runs/gpu_check-1.5b

Runs, each stage as its own child process (``python -m skillfactory ...``) so that its GPU memory is freed
before the next one starts - an in-process vLLM engine does not reliably give it back:

    sample (vLLM) -> reflect (vLLM) -> traces -> sft (bf16, --max-steps) -> grpo (TRL + vLLM colocate) -> eval (vLLM)

and prints each stage's wall time and peak GPU memory, then one PASS/FAIL line per check:
- every stage exits 0;
- the samples and reflections hold no ``<|im_end|>`` (vLLM keeps the stop string in the text when asked to;
  the end-of-turn token must not leak into saved texts, or SFT would train on it twice);
- the SFT model (``final/``) keeps the base model's chat template (training may use a marked-up copy);
- the GRPO summary says ``generation: vllm-colocate`` (not a silent fall-back to Hugging Face generate);
- the eval folder has ``results.json`` with an entry.

Peak memory is ``nvidia-smi --query-gpu=memory.used`` polled every 200 ms while the stage runs: the whole GPU's
use (other processes included; the idle figure before the stage is printed beside it). vLLM reserves
``gpu_memory_utilization`` of the GPU up front (``--vllm-memory``), so its stages show that share, not the model.

The default model is random (a 2-layer Qwen2ForCausalLM, a byte-level BPE tokenizer with Qwen2.5's special
tokens and TRL's copy of Qwen2.5's original chat template): it answers nothing correctly, so the traces stage
has no correct attempt to build from and SFT falls back to traces made from the gold answers (printed). This is
a plumbing and memory check, not an accuracy one. ``--cpu-plumbing`` runs the same stages on CPU (hf backend,
fp32, no vLLM) to test this script itself on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # Qwen2.5's ids 151643-151645, here 0-2
END_OF_TURN = "<|im_end|>"
NO_GPU = ("gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False). Run it on a GPU machine with "
          "the vllm extra (pip install 'skillfactory[vllm]'), or pass --cpu-plumbing to test the script on CPU.")


# ---- the tiny random Qwen2.5-architecture model ----------------------------------------------------------------
def _corpus(task_name: str, params: dict) -> list[str]:
    from skillfactory.prompting import REFLECTION_TEMPLATE, VARIANTS
    from skillfactory.tasks import get_task

    task = get_task(task_name, **params)
    qs = task.generate(64, seed=123, split="train")
    texts = [task.prompt(q, v) for q in qs for v in VARIANTS] + [REFLECTION_TEMPLATE]
    texts += [f"<answer>{q.gold}</answer>" for q in qs] + ["<verdict>Correct</verdict>", "<verdict>Incorrect</verdict>"]
    return texts + ["You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", "system", "user",
                    "assistant"]


def build_tiny_qwen(out: Path, task_name: str, params: dict, seed: int = 0) -> Path:
    """A random Qwen2ForCausalLM (bf16) with a Qwen2.5-style tokenizer and chat template, saved to ``out``.

    The tokenizer has the exact pipeline of transformers' ``Qwen2Tokenizer`` (NFC, Qwen2's split regex, byte-level
    BPE), so loading the folder as ``model_type: qwen2`` - which transformers 5 forces - changes nothing.
    """
    from importlib import resources

    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    split = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
             r"""\s+(?!\S)|\s+""")
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_corpus(task_name, params), trainer=trainers.BpeTrainer(
        vocab_size=512, special_tokens=[AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIALS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=END_OF_TURN, pad_token="<|endoftext|>",
                                   model_max_length=4096)
    fast.chat_template = (resources.files("trl") / "chat_templates" / "qwen2_5.jinja").read_text()
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"  # as in Qwen2.5-*-Instruct
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")

    ids = {t: fast.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    config = Qwen2Config(vocab_size=len(fast), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,  # head_dim 64: every vLLM attention backend
                         max_position_embeddings=2048, rope_theta=1_000_000.0, tie_word_embeddings=True,
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids[END_OF_TURN],
                         pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = [ids[END_OF_TURN], ids["<|endoftext|>"]]  # as Qwen2.5-Instruct
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(str(out))
    return out


# ---- GPU memory, from outside the stage process -----------------------------------------------------------------
def _gpu_index() -> str:
    """The GPU the stages will use: the first of CUDA_VISIBLE_DEVICES (an index or a UUID), else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return visible or "0"


def gpu_memory_used() -> int | None:
    """MiB in use on the stages' GPU now, or None (no nvidia-smi, or a MIG slice that reports N/A)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        text = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                               "-i", _gpu_index()], capture_output=True, text=True, timeout=20).stdout
        return int(text.strip().splitlines()[0])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.peak``: the highest memory.used (MiB) seen every 200 ms."""

    def __init__(self) -> None:
        self.peak: int | None = None
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if shutil.which("nvidia-smi") is not None:
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", _gpu_index(),
                 "-lms", "200"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout if self._proc and self._proc.stdout else ():
            try:
                value = int(line.strip())
            except ValueError:
                continue  # "[N/A]" on MIG slices
            self.peak = value if self.peak is None else max(self.peak, value)

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(5)


# ---- stages -----------------------------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    rc: int | None = None  # None: not run (an earlier stage failed), -9: timed out
    seconds: float = 0.0
    idle_mib: int | None = None
    peak_mib: int | None = None
    log: str = ""
    notes: list[str] = field(default_factory=list)


def run_stage(name: str, args: list[str], out: Path, timeout: float) -> Stage:
    """``python -m skillfactory ARGS`` in its own process group, logged to OUT/logs/NAME.log."""
    stage = Stage(name, log=str(out / "logs" / f"{name}.log"))
    Path(stage.log).parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "skillfactory", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    stage.idle_mib = gpu_memory_used()
    with open(stage.log, "w") as log, PeakMemory() as mem:
        log.write(" ".join(cmd) + "\n\n")
        log.flush()
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            stage.rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the stage and what it started (vLLM's engine core)
            proc.wait()
            stage.rc = -9
            stage.notes.append(f"timed out after {timeout:.0f} s")
        stage.seconds = time.monotonic() - t0
    stage.peak_mib = mem.peak
    if stage.rc != 0:
        tail = Path(stage.log).read_text(errors="replace").splitlines()[-15:]
        print(f"[{name}] exit {stage.rc}; last lines of {stage.log}:\n  " + "\n  ".join(tail), flush=True)
    return stage


def gold_traces(path: Path, task_name: str, params: dict, n: int) -> Path:
    """SkillFactory-shaped traces from gold answers: SFT input when the model solved nothing (a random model)."""
    from skillfactory.tasks import get_task

    task = get_task(task_name, **params)
    rows = []
    for q in task.generate(n, seed=0, split="train"):
        answer = (f"<sample>\nI will build it step by step.\n<answer>{q.gold}</answer>\n</sample>\n<reflect>\n"
                  f"Checking the answer against the question.\n<verdict>Correct</verdict>\n</reflect>\n"
                  f"<answer>{q.gold}</answer>")
        rows.append({"messages": [{"role": "user", "content": task.prompt(q, "original")},
                                  {"role": "assistant", "content": answer}]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _template(model_dir: Path) -> str | None:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir)).chat_template


# ---- main -------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Each stage's output stays in --out (logs in OUT/logs/).")
    p.add_argument("--model", help="Hugging Face model folder whose full fine-tune fits one GPU (16 B/param + "
                                   "activations; default: a tiny random Qwen2.5-architecture model)")
    p.add_argument("--out", default="runs/gpu_check", help="working folder (default runs/gpu_check)")
    p.add_argument("--force", action="store_true", help="delete the stage folders of an earlier check in --out")
    p.add_argument("--task", default="countdown")
    p.add_argument("--param", action="append", default=None, help="task parameter NAME=VALUE (default num_args=3)")
    p.add_argument("--questions", type=int, default=8, help="questions for sample and eval (default 8)")
    p.add_argument("--max-new-tokens", type=int, default=128,
                   help="sample/reflect/eval cap and GRPO's max_completion_length (default 128)")
    p.add_argument("--sft-steps", type=int, default=5)
    p.add_argument("--grpo-steps", type=int, default=2)
    p.add_argument("--vllm-memory", type=float, default=0.3,
                   help="vLLM gpu_memory_utilization, every vLLM stage (default 0.3)")
    p.add_argument("--stage-timeout", type=float, default=420, help="seconds per stage before it is killed")
    p.add_argument("--cpu-plumbing", action="store_true",
                   help="no GPU: hf backend, fp32, no vLLM; tests this script, not the GPU path")
    return p.parse_args(argv)


def preflight(args: argparse.Namespace) -> str | None:
    """Why the check cannot run here, or None."""
    if args.cpu_plumbing:
        return None
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # ask NVML: no CUDA init in this process
    import torch

    if not torch.cuda.is_available():
        return NO_GPU
    if importlib.util.find_spec("vllm") is None:
        return "gpu_check: vLLM is not installed: pip install 'skillfactory[vllm]' on this GPU machine"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = preflight(args)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    from skillfactory.config import parse_overrides

    params = parse_overrides(args.param or ["num_args=3"])
    out = Path(args.out).resolve()
    names = ("model", "sample", "reflect", "traces", "traces_gold", "sft", "grpo", "eval", "logs")
    if any((out / n).exists() for n in names):
        if not args.force:
            print(f"gpu_check: {out} holds an earlier check (stages would resume, not run); pass --force to "
                  "delete its stage folders or a new --out", file=sys.stderr)
            return 2
        for n in names:
            shutil.rmtree(out / n, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    gpu = not args.cpu_plumbing
    backend = "vllm" if gpu else "hf"
    vllm_opts = [f"--set=backend_options.gpu_memory_utilization={args.vllm_memory}"] if gpu else []
    tokens = str(args.max_new_tokens)
    task_args = ["--task", args.task, *[f"--param={k}={json.dumps(v) if not isinstance(v, str) else v}"
                                        for k, v in params.items()]]

    t_start = time.monotonic()
    if args.model:
        model = Path(args.model).resolve()
    else:
        print("[model] building a tiny random Qwen2.5-architecture model", flush=True)
        model = build_tiny_qwen(out / "model", args.task, params)
    base_template = _template(model)

    stages: dict[str, Stage] = {}
    checks: list[tuple[bool, str]] = []

    def stage(name: str, cli: list[str], needs: tuple[str, ...] = ()) -> Stage:
        failed = [n for n in needs if stages[n].rc != 0]
        if failed:
            stages[name] = Stage(name, notes=[f"not run: {', '.join(failed)} failed"])
        else:
            stages[name] = run_stage(name, cli, out, args.stage_timeout)
        s = stages[name]
        checks.append((s.rc == 0, f"{name}: exit code {s.rc}" + (f" ({'; '.join(s.notes)})" if s.notes else "")))
        return s

    stage("sample", ["sample", "--model", str(model), *task_args, "-n", str(args.questions), "--per-variant", "2",
                     "--seed", "0", "--out", str(out / "sample"), "--backend", backend, "--temperature", "1.0",
                     "--max-new-tokens", tokens, *vllm_opts])
    samples = _jsonl(out / "sample" / "samples.jsonl")
    leaked = sum(END_OF_TURN in r["text"] for r in samples)
    stops = sum(r["finish_reason"] == "stop" for r in samples)
    checks.append((bool(samples) and not leaked, f"samples: {leaked} of {len(samples)} texts hold {END_OF_TURN} "
                                                 f"({stops} ended at a stop token)"))

    stage("reflect", ["reflect", "--samples", str(out / "sample" / "samples.jsonl"), "--per-sample", "1",
                      "--out", str(out / "reflect"), "--backend", backend, "--max-new-tokens", tokens, *vllm_opts],
          needs=("sample",))
    reflections = _jsonl(out / "reflect" / "reflections.jsonl")
    leaked = sum(END_OF_TURN in r["text"] for r in reflections)
    checks.append((bool(reflections) and not leaked,
                   f"reflections: {leaked} of {len(reflections)} texts hold {END_OF_TURN}"))

    stage("traces", ["traces", "build", "--samples", str(out / "sample" / "samples.jsonl"), "--reflections",
                     str(out / "reflect" / "reflections.jsonl"), "--out", str(out / "traces")], needs=("reflect",))
    traces = out / "traces" / "traces.jsonl"
    if not _jsonl(traces):
        traces = gold_traces(out / "traces_gold" / "traces.jsonl", args.task, params, 32)
        stages["traces"].notes.append(f"no traces built (a random model solves nothing): SFT trains on "
                                      f"gold-answer traces {traces}")
        print(f"[traces] {stages['traces'].notes[-1]}", flush=True)

    precision = "bf16" if gpu else "fp32"
    stage("sft", ["sft", "--model", str(model), "--traces", str(traces), "--out", str(out / "sft"),
                  "--max-steps", str(args.sft_steps), f"--set=precision={precision}",
                  "--set=per_device_batch_size=4", "--set=gradient_accumulation_steps=1"])
    sft_final = out / "sft" / "final"
    if stages["sft"].rc == 0:
        same = _template(sft_final) == base_template
        checks.append((same, f"sft final/: chat template {'equals' if same else 'DIFFERS from'} the base model's"))
    else:
        checks.append((False, "sft final/: not written"))

    stage("grpo", ["grpo", "--model", str(sft_final), *task_args, "-n", "16", "--out", str(out / "grpo"),
                   "--max-steps", str(args.grpo_steps), "--num-generations", "4",
                   "--set=per_device_batch_size=8", "--set=gradient_accumulation_steps=1",
                   f"--set=max_completion_length={tokens}", f"--set=precision={precision}",
                   f"--set=use_vllm={'true' if gpu else 'false'}",
                   *([f"--set=vllm_gpu_memory_utilization={args.vllm_memory}"] if gpu else [])], needs=("sft",))
    summary_path = out / "grpo" / "summary.json"
    generation = json.loads(summary_path.read_text()).get("generation") if summary_path.exists() else None
    want = "vllm-colocate" if gpu else "hf"
    checks.append((generation == want, f"grpo summary: generation {generation!r} (want {want!r})"))

    suite = out / "suite.yaml"
    param_text = ", ".join(f"{k}: {json.dumps(v)}" for k, v in params.items())
    suite.write_text(f"- {{task: {args.task}, params: {{{param_text}}}, n: {args.questions}, samples: 2, "
                     f"max_new_tokens: {tokens}}}\n")
    stage("eval", ["eval", "--model", str(out / "grpo" / "final"), "--suite", str(suite), "--out", str(out / "eval"),
                   "--label", "gpu_check", "--backend", backend, "--budget-forcing", "--budgets", "0,1", *vllm_opts],
          needs=("grpo",))
    results = out / "eval" / "results.json"
    entries = json.loads(results.read_text()).get("entries", {}) if results.exists() else {}
    found = f"with {len(entries)} entries" if results.exists() else "missing"
    checks.append((bool(entries), f"eval: results.json {found}"))

    return report(out, stages, checks, time.monotonic() - t_start, gpu)


def _mib(v: int | None) -> str:
    return "n/a" if v is None else f"{v}"


def environment() -> dict[str, str]:
    """GPU name and the versions that matter, read without importing them (no CUDA context in this process)."""
    from importlib.metadata import PackageNotFoundError, version

    env = {}
    for pkg in ("torch", "vllm", "transformers", "trl", "accelerate"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            env[pkg] = "absent"
    try:
        env["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader",
                                     "-i", _gpu_index()], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        env["gpu"] = "n/a"
    return env


def report(out: Path, stages: dict[str, Stage], checks: list[tuple[bool, str]], total: float, gpu: bool) -> int:
    env = environment()
    print("\n" + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"{'stage':<8} {'exit':>5} {'wall_s':>7} {'peak_MiB':>9} {'idle_MiB':>9}")
    for s in stages.values():
        print(f"{s.name:<8} {str(s.rc):>5} {s.seconds:>7.1f} {_mib(s.peak_mib):>9} {_mib(s.idle_mib):>9}"
              + (f"   {'; '.join(s.notes)}" if s.notes else ""))
    print(f"total {total:.0f} s" + ("" if gpu else " (cpu-plumbing: no GPU figures)") + "\n")
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    passed = sum(ok for ok, _ in checks)
    print(f"\n{passed}/{len(checks)} checks passed; logs in {out / 'logs'}")
    record = {"gpu": gpu, "environment": env, "total_seconds": round(total, 1),
              "stages": [s.__dict__ for s in stages.values()], "checks": [{"pass": ok, "check": text} for ok, text in checks]}
    (out / "gpu_check.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
