"""Why a toy model fails countdown: copying vs step arithmetic (the figures of README "The tiny model").

    python benchmarks/toy_diagnose.py MODEL_DIR                 # countdown-3, 32 test questions x 4 variants x 4
    python benchmarks/toy_diagnose.py MODEL_DIR --num-args 2

Prints the share of attempts that are correct, whose answer uses exactly the question's numbers ("copied"),
whose every ``Step k: a op b = c`` line is right ("steps right"), and the accuracy of ``a op b = c`` lines the
model writes when asked for an arithmetic drill (the corpus's drill prompt).
"""

from __future__ import annotations

import argparse
import re

STEP = re.compile(r"Step \d+: (\d+) ([+-]) (\d+) = (\d+)")
LINE = re.compile(r"(\d+) ([+-]) (\d+) = (\d+)")


def _right(a: str, op: str, b: str, c: str) -> bool:
    return (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--num-args", type=int, default=3)
    ap.add_argument("--questions", type=int, default=32)
    ap.add_argument("--samples", type=int, default=4, help="per question and prompt variant")
    args = ap.parse_args()

    import torch

    from skillfactory.generation import GenerationRequest, SamplingParams, get_backend
    from skillfactory.prompting import VARIANTS
    from skillfactory.tasks import get_task
    from skillfactory.toy.corpus import DRILL_PROMPT
    from skillfactory.toy.presets import TINY_COUNTDOWN

    torch.set_num_threads(1)
    backend = get_backend("hf", model=args.model, batch_size=128)
    task = get_task("countdown", num_args=args.num_args, **TINY_COUNTDOWN)
    questions = task.generate(args.questions, seed=0, split="test")
    reqs = [GenerationRequest([{"role": "user", "content": task.prompt(q, v)}]) for q in questions for v in VARIANTS]
    outs = backend.generate(reqs, SamplingParams(n=args.samples, temperature=1.0, max_new_tokens=200, seed=0))
    n = correct = copied = steps_right = 0
    for i, samples in enumerate(outs):
        q = questions[i // len(VARIANTS)]
        numbers = sorted(int(x) for x in q.fields["numbers"])
        for s in samples:
            n += 1
            correct += task.check(q, s.text).correct
            answer = task.extract_answer(s.text) or ""
            copied += sorted(int(x) for x in re.findall(r"\d+", answer)) == numbers
            steps = STEP.findall(s.text)
            steps_right += bool(steps) and all(_right(*st) for st in steps)
    drill = backend.generate([GenerationRequest([{"role": "user", "content": DRILL_PROMPT}])],
                             SamplingParams(n=8, temperature=1.0, max_new_tokens=150, seed=0))[0]
    lines = [m for s in drill for m in LINE.findall(s.text)]
    print(f"countdown-{args.num_args}: {n} attempts, correct {correct / n:.1%}, numbers copied {copied / n:.1%}, "
          f"steps right {steps_right / n:.1%}; drill lines right {sum(_right(*m) for m in lines)}/{len(lines)}")


if __name__ == "__main__":
    main()
