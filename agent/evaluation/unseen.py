"""The unseen evaluation set: two independent writers' cases, split into ``dev`` and ``test``.

    python -m agent.evaluation.unseen split [--source DIR] [--out eval/unseen]

Each writer saw only the seeds and POLICY.md. Their files (``drafting_A.jsonl``,
``drafting_B.jsonl``) hold cases with an English situation label per question; the labels map
to corpus scripts through ``eval/unseen/situations.yaml`` (mapped from the label alone), which
gives each case its per-question ``expected_groups``. The split is by sha1 of the case id (the
low bit of its first byte), so it is stable, about half and half, and mixes both writers. Tune
on ``dev``; ``test`` is for reported figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from agent.config import REPO_ROOT
from agent.evaluation.dataset import GoldenCase
from agent.types import Order

DEFAULT_SOURCE = REPO_ROOT.parent / "unseen"
DEFAULT_OUT = REPO_ROOT / "eval" / "unseen"
WRITERS = {
    "drafting_A.jsonl": "A",
    "drafting_B.jsonl": "B",
    "drafting_C.jsonl": "C",
    "drafting_D.jsonl": "D",
    "drafting_E.jsonl": "E",
    "drafting_F.jsonl": "F",
    "drafting_G.jsonl": "G",
    "drafting_H.jsonl": "H",
    "drafting_I.jsonl": "I",
    "drafting_J.jsonl": "J",
    "drafting_K.jsonl": "K",
    "drafting_L.jsonl": "L",
    "drafting_M.jsonl": "M",
}


_PLATFORMS = {"taobao": "淘宝", "tmall": "天猫", "pdd": "拼多多"}


def split_of(case_id: str) -> str:
    return "test" if hashlib.sha1(case_id.encode()).digest()[0] & 1 else "dev"


def to_case(raw: dict[str, Any], writer: str, situations: dict[str, list[str]]) -> GoldenCase:
    labels = list(raw.get("situations") or [])
    missing = [label for label in labels if label not in situations]
    if missing:
        raise KeyError(f"{raw['id']}: situation {missing[0]!r} is not in situations.yaml")
    groups = [situations[label] for label in labels]
    expected = list(dict.fromkeys(sid for group in groups for sid in group))
    category = groups[0][0].split(".")[0] if groups and groups[0] else "unseen"
    fields = {k: raw[k] for k in ("id", "group", "message", "golden", "expect_refusal") if k in raw}
    optional = {k: raw[k] for k in ("must_include", "must_not", "order", "turns", "note") if raw.get(k)}
    if isinstance(optional.get("order"), dict):
        # Writer M gave order times (paid_at, delivered_at) the agent's order tool does not hold:
        # they are dropped from the order and kept, as written, in the note.
        order = dict(optional["order"])
        extra = {k: order.pop(k) for k in list(order) if k not in Order.model_fields}
        # ... and named the platform in Latin letters, which the order holds in Chinese.
        platform = order.get("platform")
        if isinstance(platform, str):
            order["platform"] = _PLATFORMS.get(platform, platform)
        optional["order"] = order
        if extra:
            said = "; ".join(f"{k} {v}" for k, v in extra.items())
            optional["note"] = f"{optional.get('note', '')} (order fields kefu does not hold: {said})".strip()
    return GoldenCase.model_validate(
        {
            **fields,
            **optional,
            "shop": raw.get("shop") or "default",
            "category": category,
            "expected_ids": expected,
            "expected_groups": groups,
            "situations": labels,
            "writer": writer,
            "source": "unseen",
        }
    )


def split(source: Path, out: Path) -> dict[str, int]:
    situations: dict[str, list[str]] = yaml.safe_load((out / "situations.yaml").read_text(encoding="utf-8"))
    parts: dict[str, list[GoldenCase]] = {"dev": [], "test": []}
    for name, writer in WRITERS.items():
        path = source / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                case = to_case(json.loads(line), writer, situations)
                parts[split_of(case.id)].append(case)
    counts = {}
    for part, cases in parts.items():
        lines = [json.dumps(c.model_dump(exclude_defaults=True), ensure_ascii=False) for c in cases]
        (out / f"{part}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[part] = len(cases)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m agent.evaluation.unseen")
    parser.add_argument("command", choices=["split"])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    print(split(args.source, args.out))


if __name__ == "__main__":
    main()
