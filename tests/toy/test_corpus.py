"""The toy corpus: one attempt per answer, no trace tags or glue phrases, truth from the verifier, seeded."""

from __future__ import annotations

import random
import re

import pytest

from skillfactory.prompting import REFLECTION_TEMPLATE, VARIANTS, parse_verdict
from skillfactory.tasks import get_task
from skillfactory.toy.attempts import countdown_attempt, mult_attempt
from skillfactory.toy.corpus import build_corpus, drill_lines, glue_phrases, tokenizer_texts, violations
from skillfactory.toy.presets import get_preset

CFG = get_preset("tiny").corpus


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(CFG, seed=0, n=600)


def test_no_conversation_chains_attempts(corpus):
    convs, stats = corpus
    phrases = glue_phrases()
    assert stats.disagreements == 0
    for c in convs:
        assert violations(c, phrases) == []
        text = c.messages[-1]["content"]
        for tag in ("<sample>", "</sample>", "<reflect>", "<think>"):
            assert tag not in text
        if c.kind == "solve":
            assert text.count("<answer>") == 1 and "<verdict>" not in text
        elif c.kind == "reflect":
            assert parse_verdict(text) is not None and "<answer>" not in text
        else:
            assert c.kind in ("drill", "copy") and "<answer>" not in text and "<verdict>" not in text


def test_violations_catch_a_second_attempt_and_glue(corpus):
    convs, _ = corpus
    solve = next(c for c in convs if c.kind == "solve")
    doubled = type(solve)(solve.kind, solve.task, solve.size, solve.variant,
                          [solve.messages[0], {"role": "assistant", "content": solve.messages[1]["content"] * 2}],
                          solve.correct)
    assert violations(doubled)
    tagged = type(solve)(solve.kind, solve.task, solve.size, solve.variant,
                         [solve.messages[0], {"role": "assistant", "content": "<sample>" + solve.messages[1]["content"]}],
                         solve.correct)
    assert violations(tagged)
    phrases = glue_phrases()
    if phrases:
        glued = type(solve)(solve.kind, solve.task, solve.size, solve.variant,
                            [solve.messages[0], {"role": "assistant", "content": phrases[0] + "\n" + solve.messages[1]["content"]}],
                            solve.correct)
        assert violations(glued, phrases)


def test_prompts_are_the_pipeline_prompts(corpus):
    convs, _ = corpus
    head = REFLECTION_TEMPLATE.split("{question}")[0]
    for c in convs:
        if c.kind == "reflect":
            assert c.messages[0]["content"].startswith(head)
        elif c.kind == "solve":
            assert c.messages[0]["content"].rstrip().endswith("<answer> </answer> tags.")
    assert {c.variant for c in convs if c.kind == "solve"} == set(VARIANTS)


def test_fair_share_wrong_and_mostly_right_verdicts(corpus):
    convs, _ = corpus
    for task in ("countdown", "multiplication"):
        solve = [c for c in convs if c.kind == "solve" and c.task == task]
        right = sum(c.correct for c in solve) / len(solve)
        assert 0.25 < right < 0.9, (task, right)
    refl = [c for c in convs if c.kind == "reflect"]
    agree = sum(c.verdict == c.correct for c in refl) / len(refl)
    assert 1 - CFG.verdict_flip - 0.08 < agree < 1 - CFG.verdict_flip + 0.08
    assert any(c.verdict != c.correct for c in refl)  # some checks are mistaken on purpose


def test_corpus_is_deterministic_given_the_seed():
    a, _ = build_corpus(CFG, seed=3, n=80)
    b, _ = build_corpus(CFG, seed=3, n=80)
    c, _ = build_corpus(CFG, seed=4, n=80)
    assert [x.messages for x in a] == [x.messages for x in b]
    assert [x.messages for x in a] != [x.messages for x in c]


@pytest.mark.parametrize("size", [2, 3, 4])
def test_countdown_attempt_truth_matches_the_verifier(size):
    task = get_task("countdown", num_args=size, **CFG.countdown_params)
    rng = random.Random(size)
    accidents = 0
    for q in task.generate(30, seed=1):
        numbers, target = q.fields["numbers"], q.fields["target"]
        right = countdown_attempt(numbers, target, rng.choice(VARIANTS), rng, 1.0, CFG.countdown_params["operators"])
        assert task.verify(q, right.text), right.text
        wrong = countdown_attempt(numbers, target, rng.choice(VARIANTS), rng, 0.0, CFG.countdown_params["operators"])
        assert wrong.error is not None
        # with single-digit numbers an injected error can land on another right answer by accident (the corpus
        # labels every attempt with the verifier, so such an attempt is simply a correct one)
        accidents += task.verify(q, wrong.text)
        assert len(right.text) < 260
    assert accidents <= 6, f"{accidents}/30 attempts drawn as wrong were right"


@pytest.mark.parametrize("digits", [2, 3])
def test_multiplication_attempt_truth_matches_the_verifier(digits):
    task = get_task("multiplication", digits=digits)
    rng = random.Random(digits)
    for q in task.generate(30, seed=1):
        a, b = int(q.fields["a"]), int(q.fields["b"])
        assert task.verify(q, mult_attempt(a, b, rng.choice(VARIANTS), rng, 1.0).text)
        assert not task.verify(q, mult_attempt(a, b, rng.choice(VARIANTS), rng, 0.0).text)


def test_tokenizer_covers_prompt_and_glue_words(corpus):
    from skillfactory.prompting import ANSWER_RULE, VARIANT_INSTRUCTIONS
    from skillfactory.toy.tokenizer import train_tokenizer

    convs, _ = corpus
    tok = train_tokenizer(tokenizer_texts(convs), vocab_size=1024)
    text = " ".join([ANSWER_RULE, REFLECTION_TEMPLATE, *VARIANT_INSTRUCTIONS.values(), *glue_phrases()])
    words = text.split()
    n_tokens = len(tok.encode(" " + " ".join(words)).ids)
    assert n_tokens / len(words) < 1.6  # words are whole tokens, not bytes
    for tag in ("<answer>", "</answer>", "<sample>", "<verdict>", "</think>"):
        assert len(tok.encode(tag).ids) == 1


def test_drill_lines_are_right_arithmetic_in_the_attempts_step_form(corpus):
    convs, stats = corpus
    drills = [c for c in convs if c.kind == "drill"]
    assert drills and CFG.drill_share > 0
    line = re.compile(r"^(\d+) ([+x*-]) (\d+) = (\d+)$")  # "*": single-digit facts of column multiplication
    for c in drills:
        lines = c.messages[-1]["content"].split("\n")
        assert len(lines) == CFG.drill_lines
        for text in lines:
            a, op, b, c_ = line.match(text).groups()
            a, b, c_ = int(a), int(b), int(c_)
            assert c_ == {"+": a + b, "-": a - b, "x": a * b, "*": a * b}[op]
            assert c_ > 0 or c.task == "multiplication"  # zero digits make zero facts and sums there


def test_digit_step_drills_are_facts_and_partial_lines():
    cfg = CFG.model_copy(update={"multiplication_steps": "digits", "multiplication_sizes": {2: 1.0}})
    lines = drill_lines(cfg, "multiplication", random.Random(0))
    assert len(lines) == cfg.drill_lines
    facts = [t for t in lines if t.count(" = ") == 1 and " + " not in t]
    partials = [t for t in lines if t.count(" = ") == 3]
    sums = [t for t in lines if t.count(" = ") == 1 and " + " in t]
    assert facts and partials and sums and len(facts) + len(partials) + len(sums) == len(lines)
    for t in sums:
        a, b, c = map(int, re.fullmatch(r"(\d+) \+ (\d+) = (\d+)", t).groups())
        assert a + b == c
    for t in facts:
        a, b, c = re.fullmatch(r"(\d+) x (\d+) = (\d+)", t).groups()
        assert len(a.rstrip("0")) == 1 and int(a) * int(b) == int(c)
    for t in partials:  # "37 x 20 = 30 x 20 + 7 x 20 = 600 + 140 = 740"
        a, p, d1, p1, d2, p2, f1, f2, v = map(int, re.findall(r"\d+", t))
        assert p == p1 == p2 and d1 + d2 == a and (f1, f2) == (d1 * p, d2 * p) and v == a * p == f1 + f2


def test_in_order_attempts_copy_the_question_order_when_a_chain_fits():
    rng = random.Random(3)
    task = get_task("countdown", num_args=3, **CFG.countdown_params)
    same = {0.0: 0, 1.0: 0}
    for q in task.generate(150, seed=1):
        numbers, target = [int(n) for n in q.fields["numbers"]], int(q.fields["target"])
        for share in same:
            att = countdown_attempt(numbers, target, "original", rng, 0.5, "+-", in_order=share)
            same[share] += att.order == tuple(numbers)
    assert same[1.0] > 0.6 * 150 and same[1.0] > 2 * same[0.0]


def test_warmup_drills_come_first_and_are_batched_first():
    from skillfactory.toy.corpus import warmup_conversations
    from skillfactory.toy.pretrain import _batches

    cfg = CFG.model_copy(update={"warmup_drills": 10, "n_conversations": 30})
    warm = warmup_conversations(cfg, seed=0)
    assert len(warm) == 10 and all(c.kind == "drill" for c in warm)
    convs, stats = build_corpus(cfg, seed=0)
    assert [c.messages for c in convs[:10]] == [c.messages for c in warm] and stats.counts["warmup_drills"] == 10
    examples = [([1] * (5 + i % 7), 2) for i in range(len(convs))]
    batches = _batches(examples, batch_size=4, epochs=1.0, seed=0, n_warmup=10)
    head = [i for b in batches[:3] for i in b]
    assert sorted(head) == list(range(10))  # the warm-up, once, before anything else
    assert sorted(i for b in batches[3:] for i in b) == list(range(10, len(convs)))


def test_prompt_phrases_are_the_fixed_prompt_sentences_and_tokenize_whole(corpus):
    from skillfactory.prompting import ANSWER_RULE, VARIANT_INSTRUCTIONS
    from skillfactory.toy.corpus import prompt_phrases
    from skillfactory.toy.tokenizer import train_tokenizer

    convs, _ = corpus
    phrases = prompt_phrases(convs)
    assert ANSWER_RULE in phrases and all(v in phrases for v in VARIANT_INSTRUCTIONS.values() if v)
    assert not any("Using the numbers" in p for p in phrases)  # the question's own sentence varies
    answers = "\n".join(c.messages[-1]["content"] for c in convs)
    assert not any(p in answers for p in phrases)  # read, never written
    assert prompt_phrases(convs) == phrases  # deterministic
    plain = train_tokenizer(tokenizer_texts(convs), vocab_size=1024)
    whole = train_tokenizer(tokenizer_texts(convs), vocab_size=1024, phrases=phrases)
    for c in convs[:50]:
        text = c.messages[0]["content"]
        assert whole.decode(whole.encode(text).ids) == text
        if c.kind in ("solve", "reflect"):  # a solve prompt is mostly fixed sentences; a reflect prompt also holds the attempt
            bound = 0.5 if c.kind == "solve" else 0.8
            assert len(whole.encode(text).ids) < bound * len(plain.encode(text).ids), (c.kind, text)
    assert len(whole.encode(ANSWER_RULE).ids) == 1


def test_merges_across_spaces_shorten_the_text_and_decode_losslessly(corpus):
    from skillfactory.toy.tokenizer import train_tokenizer

    convs, _ = corpus
    texts = tokenizer_texts(convs)
    words = train_tokenizer(texts, vocab_size=1024)
    spans = train_tokenizer(texts, vocab_size=1024, across_spaces=True)
    sample = [m["content"] for c in convs[:100] for m in c.messages]
    assert all(spans.decode(spans.encode(t).ids) == t for t in sample)
    assert sum(len(spans.encode(t).ids) for t in sample) < 0.8 * sum(len(words.encode(t).ids) for t in sample)
    digits = spans.encode("Step 1: 17 + 6 = 23").tokens
    assert [t for t in digits if any(ch.isdigit() for ch in t)] == ["1", "1", "7", "6", "2", "3"]  # one digit each


def test_column_drills_and_copies_are_the_columns_facts_and_sums():
    from skillfactory.toy.corpus import copy_conversation

    cfg = CFG.model_copy(update={"multiplication_steps": "columns", "multiplication_sizes": {2: 1.0}})
    rng = random.Random(1)
    lines = drill_lines(cfg, "multiplication", rng)
    assert len(lines) == cfg.drill_lines
    ops = set()
    for t in lines:
        a, op, b, c = re.fullmatch(r"(\d+) ([+*]) (\d+) = (\d+)", t).groups()
        ops.add(op)
        assert int(c) == (int(a) + int(b) if op == "+" else int(a) * int(b))
        assert op == "+" or (len(a) == 1 and len(b) == 1)  # products are single-digit facts
    assert ops == {"+", "*"}
    copy = copy_conversation(cfg, "multiplication", rng).messages
    a, b = map(int, copy[0]["content"].split(" x "))
    assert copy[1]["content"].split("\n")[1] == f"ones: {a % 10} * {b % 10}"
