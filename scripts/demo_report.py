"""Build a demo report from scripted models (no model, no download), then screenshot it in headless Chromium.

Three scripted "models" answer real suite questions (multiplication 2-4 digits, the training task at 2; and
acronym as out-of-domain): ``base`` and ``rl_only`` answer plainly, ``skillfactory`` writes SkillFactory traces
(attempts, reflections, verdicts) and closes its thinking, so budget forcing has something to force. Each
model is right with its own probability, drawn from a seeded hash of (question, sample, attempt). Use it to
look at the report's layout and the trace viewer:

    .venv/bin/python scripts/demo_report.py /tmp/skillfactory_demo
    # -> /tmp/skillfactory_demo/report/report.html and report/screenshot.png
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

from skillfactory.evaluation.evaluate import EvalConfig, evaluate
from skillfactory.generation.base import Completion
from skillfactory.report import write_report
from skillfactory.tasks import get_task

SUITE = ([{"task": "multiplication", "params": {"digits": d}, "n": 12, "samples": 4, "max_new_tokens": 256}
          for d in (2, 3, 4)] + [{"task": "acronym", "params": {"length": 4}, "n": 12, "samples": 4, "max_new_tokens": 256}])
ARMS = {"base": (0.45, False), "rl_only": (0.55, False), "skillfactory": (0.65, True)}


class ScriptedModel:
    """A Backend whose answers are the gold answer (right) or a corrupted one (wrong), by a seeded coin."""

    name = "scripted"

    def __init__(self, p_right: float, tagged: bool, golds: dict[str, str]):
        self.p, self.tagged, self.golds = p_right, tagged, golds

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _answer(self, prompt: str, key: str, p: float | None = None) -> str:
        gold = self.golds[prompt]
        return gold if random.Random(key).random() < (self.p if p is None else p) else gold + "x"

    def _text(self, prompt: str, prefix: str, i: int) -> str:
        if not self.tagged:
            return f"Working it out step by step.\n<answer>{self._answer(prompt, f'{prompt}|{i}')}</answer>"
        if prefix:  # a forced continuation: one more attempt, then close
            a = self._answer(prompt, f"{prompt}|{i}|{prefix.count('<sample>')}", p=0.95)  # thinking longer helps
            verdict = "Correct" if a == self.golds[prompt] else "Incorrect"
            return (f"Another approach gives {a}. <answer>{a}</answer>\n</sample>\n<reflect>\nChecking again. "
                    f"<verdict>{verdict}</verdict>\n</reflect>\n</think>\n\nSo the final answer is:\n\n<answer>\n{a}\n</answer>")
        first = self._answer(prompt, f"{prompt}|{i}|first")
        second = self._answer(prompt, f"{prompt}|{i}|second")
        v1 = "Correct" if first == self.golds[prompt] else "Incorrect"
        v2 = "Correct" if second == self.golds[prompt] else "Incorrect"
        final = first if v1 == "Correct" else second
        return (f"<think>\n<sample>\nFirst attempt: {first}. <answer>{first}</answer>\n</sample>\n<reflect>\n"
                f"Let me verify this. <verdict>{v1}</verdict>\n</reflect>\n"
                + ("" if v1 == "Correct" else f"That was wrong; let me try another way.\n<sample>\nSecond attempt: "
                   f"{second}. <answer>{second}</answer>\n</sample>\n<reflect>\nRechecking. <verdict>{v2}</verdict>\n"
                   f"</reflect>\n")
                + f"</think>\n\nSo the final answer is:\n\n<answer>\n{final}\n</answer>")

    def generate(self, requests, params, progress=None):
        out = []
        for r in requests:
            prompt = r.messages[-1]["content"]
            comps = []
            for i in range(params.n):
                text = self._text(prompt, r.prefix, i + 7 * params.seed)
                comps.append(Completion(text, self.count_tokens(text), "stop"))
            out.append(comps)
        return out


def main(root: Path) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    golds = {}
    for e in SUITE:
        task = get_task(e["task"], **e["params"])
        for q in task.generate(e["n"], seed=0, split="test"):
            golds[task.prompt(q, "original")] = q.gold
    for label, (p, tagged) in ARMS.items():
        bf = {"enabled": True, "budgets": [0, 1, 2, 4], "entries": ["multiplication[digits=3]"], "samples": 2}
        evaluate(EvalConfig(model=f"scripted:{label}", label=label, suite=SUITE, out=str(root / label / "eval"),
                            budget_forcing=bf), backend=ScriptedModel(p, tagged, golds))
    for arm, lift in (("rl_only", 0.0), ("skillfactory", 0.1)):
        (root / arm / "grpo").mkdir(parents=True)
        rows = [{"stage": "grpo", "step": s, "loss": 0.4 / s ** 0.5, "reward_mean": min(1.0, 0.3 + lift + s / 100),
                 "completion_length": 40 + s + 60 * lift, "clipped_ratio": 0.0,
                 "attempts": 1 + 10 * lift * s / 40, "verdicts": 10 * lift * s / 40} for s in range(1, 41)]
        (root / arm / "grpo" / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "experiment.json").write_text(json.dumps({"train_task": "multiplication", "train_params": {"digits": 2}}))
    html = write_report([root], root / "report", title="Demo report (scripted models)")
    script = Path(__file__).with_name("screenshot_report.sh")
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        subprocess.run(["bash", str(script), str(html), str(root / "report" / "screenshot.png"), "1280x2400"], check=True)
    return html


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/skillfactory_demo")))
