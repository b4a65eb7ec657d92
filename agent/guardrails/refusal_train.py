"""Train the refusal model (:mod:`agent.guardrails.refusal_model`) on labelled drafts.

    python -m agent.guardrails.refusal_train [--out PATH] [FILE.jsonl ...]

Each line of a training file has ``draft``, ``query`` and ``is_refusal``, or is a drafting eval case
(``message``, ``golden``, ``expect_refusal``): the customer's message and a good agent's reply, whose
opening apology is cut off (the model is asked only of drafts that do not open with it, so a golden
decline teaches it a decline without the apology): the opener as corpus/tone_rules.yaml compiles it
(its greetings, then its apology), so a greeting a supervisor adds is cut too. By default (in a
source checkout): the team's table (tests/data/guardrail_table.jsonl), the unseen guardrail set's
``dev`` split and the unseen drafting set's ``dev`` split: never ``test``. The model is written
beside the workspace's tone_rules.yaml unless ``--out`` says otherwise.
Features seen in fewer than two drafts are dropped; the regression is class-balanced, L2
regularised, and fitted by a fixed number of full-batch Adam steps from zero, so the same files
give the same weights (numpy only; nothing random).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.guardrails.refusal_model import RefusalModel, draft_features, query_features, to_json
from agent.text import normalize

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FILES = (
    REPO / "tests" / "data" / "guardrail_table.jsonl",
    REPO / "eval" / "guardrail" / "dev.jsonl",
    REPO / "eval" / "unseen" / "dev.jsonl",
)
TONE_RULES = REPO / "corpus" / "tone_rules.yaml"
# What is left of the apology clause once the rules' opener (a greeting, then 非常抱歉) is cut from
# a golden decline (normalised text: Simplified, half-width marks): 给您带来不便 and the marks after it.
_APOLOGY_TAIL = re.compile(r"(?:给您带来(?:的)?不便|给您添麻烦了|让您久等了)?[,!。~\s]*")
MODEL_FILE = "refusal_model.json"
CHARS = 12  # opening characters of a reply that are read
MIN_DRAFTS = 2
L2 = 1.0
STEPS = 800
RATE = 0.1


def features(draft: str, query: str, chars: int, max_run: int) -> Counter[str]:
    """Each feature of a draft and its query, with how often it occurs (as the model counts them)."""
    d = normalize(draft, max_run).text
    q = normalize(query, max_run).text
    return Counter(draft_features(d, chars)) + Counter(query_features(q))


def opener_of(tone_rules: Path) -> tuple[re.Pattern[str], int]:
    """The refusal opener (greetings, then the apology) and ``max_run``, compiled as the guardrail
    compiles them from ``tone_rules`` (the model file it names is not read: it may not exist yet)."""
    from agent.datafile import read_yaml
    from agent.guardrails.compiler import Compiler
    from agent.guardrails.spec import ToneRulesSpec

    spec = ToneRulesSpec.model_validate(read_yaml(tone_rules))
    return Compiler(tone_rules, spec).openers(spec.refusal)[0], spec.max_run


def read_rows(paths: Sequence[Path], tone_rules: Path = TONE_RULES) -> list[dict[str, Any]]:
    """Labelled drafts from ``paths``; drafting eval cases become drafts with the opener of
    ``tone_rules`` cut from their golden declines."""
    opener: tuple[re.Pattern[str], int] | None = None
    rows = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "golden" in row and "draft" not in row:
                opener = opener or opener_of(tone_rules)
                row = _from_case(row, *opener)
            if not isinstance(row.get("draft"), str) or not isinstance(row.get("is_refusal"), bool):
                raise ValueError(
                    f"{path}:{n}: needs a draft and is_refusal (true or false), or a message, golden and expect_refusal"
                )
            if row["draft"]:
                rows.append(row)
    return rows


def _from_case(case: dict[str, Any], opener: re.Pattern[str], max_run: int) -> dict[str, Any]:
    """A drafting eval case as a labelled draft: the golden reply; a decline's opening apology (the
    rules' opener and the rest of its clause, 给您带来不便) cut off, as the model never reads a
    draft that opens with it."""
    golden = case.get("golden")
    declines = case.get("expect_refusal")
    draft = golden
    if isinstance(golden, str) and declines is True:
        text = normalize(golden, max_run).text
        match = opener.match(text)
        if match is not None:
            tail = _APOLOGY_TAIL.match(text, match.end())
            draft = text[tail.end() if tail is not None else match.end() :]
    return {"draft": draft, "query": case.get("message"), "is_refusal": declines}


def train(rows: Sequence[dict[str, Any]], max_run: int = 2, chars: int = CHARS, steps: int = STEPS) -> RefusalModel:
    """Fit the model on rows with ``draft``, ``query`` (may be missing) and ``is_refusal``."""
    import numpy as np

    sets = [features(r["draft"], r.get("query") or "", chars, max_run) for r in rows]
    seen = Counter(f for s in sets for f in s)
    vocab = sorted(f for f, c in seen.items() if c >= MIN_DRAFTS)
    index = {f: i for i, f in enumerate(vocab)}
    x = np.zeros((len(rows), len(vocab)))
    for r, s in enumerate(sets):
        for f, count in s.items():
            i = index.get(f)
            if i is not None:
                x[r, i] = count
    y = np.array([1.0 if r["is_refusal"] else 0.0 for r in rows])
    share = y.mean()
    if share in (0.0, 1.0):
        raise ValueError("training needs refusals and non-refusals")
    balance = np.where(y == 1.0, 0.5 / share, 0.5 / (1.0 - share))
    w = np.zeros(len(vocab))
    b = 0.0
    m, v, mb, vb = np.zeros_like(w), np.zeros_like(w), 0.0, 0.0
    n = len(y)
    for t in range(1, steps + 1):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        e = (p - y) * balance
        gw = x.T @ e / n + L2 * w / n
        gb = float(e.mean())
        m = 0.9 * m + 0.1 * gw
        v = 0.999 * v + 0.001 * gw * gw
        w -= RATE * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        mb = 0.9 * mb + 0.1 * gb
        vb = 0.999 * vb + 0.001 * gb * gb
        b -= RATE * (mb / (1 - 0.9**t)) / ((vb / (1 - 0.999**t)) ** 0.5 + 1e-8)
    weights = {f: float(w[i]) for f, i in index.items()}
    return RefusalModel(chars=chars, bias=float(b), weights=weights)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the refusal model on labelled drafts (never on test).")
    parser.add_argument("files", nargs="*", type=Path, help="labelled JSONL (default: team table and unseen dev)")
    parser.add_argument("--out", type=Path, default=None, help=f"default: {MODEL_FILE} in the workspace's corpus")
    parser.add_argument("--max-run", type=int, default=2, help="tone_rules.yaml's max_run (normalisation)")
    args = parser.parse_args(argv)
    files = tuple(args.files) or DEFAULT_FILES
    if any("test" in p.name for p in files):
        print("error: the test split is for reported figures only; train on dev", file=sys.stderr)
        return 2
    missing = [p for p in files if not p.is_file()]
    if missing:
        print(f"error: no labelled file {missing[0]}: give the JSONL files to train on", file=sys.stderr)
        return 2
    if args.out is None:
        from agent.config import get_settings

        args.out = get_settings().corpus_dir / MODEL_FILE
    try:
        rows = read_rows(files)
        model = train(rows, max_run=args.max_run)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    about = {
        "trained_on": [
            {
                "file": str(p.relative_to(REPO)) if p.is_relative_to(REPO) else p.name,
                "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:16],
            }
            for p in files
        ],
        "drafts": len(rows),
        "command": "python -m agent.guardrails.refusal_train",
    }
    model = RefusalModel(model.chars, model.bias, model.weights, about=about)
    args.out.write_text(to_json(model), encoding="utf-8")
    print(f"{args.out}: {sum(1 for v in model.weights.values() if round(v, 4))} weights from {len(rows)} drafts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
