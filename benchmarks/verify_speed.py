"""Countdown verification speed: skillfactory's exact verifier vs reasoning-gym's countdown scorer (sympy).

Both score the same answers to the same questions: a third correct (the gold expression), a third with a
number swapped for another, a third with the right numbers but a wrong value. Prints verifications per
CPU-second for each (process time, so busy neighbours on a shared machine do not skew it), their ratio
(goal: >= 20x), and how often the two agree on right/wrong.

    .venv/bin/python benchmarks/verify_speed.py            # 10k answers, 3-number questions
    .venv/bin/python benchmarks/verify_speed.py --n 2000 --num-args 5
"""

from __future__ import annotations

import argparse
import random
import re
import time


def make_answers(n: int, num_args: int, seed: int):
    from skillfactory.tasks import get_task

    task = get_task("countdown", num_args=num_args)
    questions = task.generate(n, seed=seed)
    rng = random.Random(seed)
    answers = []
    for i, q in enumerate(questions):
        gold = q.gold
        if i % 3 == 1:  # swap one number for one that is not given
            nums = list(re.finditer(r"\d+", gold))
            m = rng.choice(nums)
            new = str(int(m.group()) + rng.randint(1, 9))
            gold = gold[: m.start()] + new + gold[m.end():]
        elif i % 3 == 2:  # same numbers, one operator changed: (almost always) a wrong value
            for a, b in (("+", "-"), ("*", "+"), ("-", "+"), ("/", "*")):
                if a in gold:
                    gold = gold.replace(a, b, 1)
                    break
        answers.append(gold)
    return task, questions, answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--num-args", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import reasoning_gym

    task, questions, answers = make_answers(args.n, args.num_args, args.seed)
    rg = reasoning_gym.create_dataset("countdown", seed=0, size=1)
    entries = [{"question": task.statement(q), "answer": q.gold,
                "metadata": {"numbers": q.fields["numbers"], "target": q.fields["target"]}} for q in questions]
    texts = [f"<answer>{a}</answer>" for a in answers]

    # CPU time of this process (time.process_time): on a shared machine wall time mostly measures the neighbours.
    t0 = time.process_time()
    ours = [task.check(q, t).correct for q, t in zip(questions, texts)]
    t_ours = time.process_time() - t0

    t0 = time.process_time()
    theirs = [rg.score_answer(answer=task.extract_answer(t), entry=e) >= 1.0 for t, e in zip(texts, entries)]
    t_rg = time.process_time() - t0

    agree = sum(a == b for a, b in zip(ours, theirs)) / len(ours)
    print(f"answers: {len(answers)} ({args.num_args} numbers; {sum(ours)} correct by skillfactory, "
          f"{sum(theirs)} by reasoning-gym)")
    print(f"skillfactory countdown verifier : {len(answers) / t_ours:12,.0f} verifications/s ({t_ours:.2f} s CPU)")
    print(f"reasoning-gym countdown scorer  : {len(answers) / t_rg:12,.0f} verifications/s ({t_rg:.2f} s CPU)")
    print(f"speed-up: {t_rg / t_ours:.1f}x (goal >= 20x); verdicts agree on {agree:.2%} of answers")


if __name__ == "__main__":
    main()
