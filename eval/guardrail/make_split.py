"""Copy the writers' unseen guardrail sets into dev.jsonl and test.jsonl, deterministically.

    .venv/bin/python eval/guardrail/make_split.py [/work/unseen]

Per writer, rows are ordered by the SHA-1 of their id and the first half goes to dev, the rest to
test, so both writers are in both splits and a row never moves between splits when it is rerun.
Relabels (see README.md) are applied from relabels.json after the copy, each with its reason
appended to the row's note.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRITERS = ("guard_A.jsonl", "guard_B.jsonl", "guard_C.jsonl", "guard_D.jsonl", "guard_E.jsonl", "guard_F.jsonl", "guard_G.jsonl", "guard_H.jsonl", "guard_I.jsonl", "guard_J.jsonl", "guard_K.jsonl", "guard_L.jsonl", "guard_M.jsonl")
FIELDS = {"id", "query", "draft", "labels", "is_refusal", "spans", "note"}


def rows_of(path: Path) -> list[dict[str, object]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = FIELDS - set(row)
        if missing:
            raise SystemExit(f"{path}:{number}: missing {sorted(missing)}")
        rows.append(row)
    return rows


def key(row: dict[str, object]) -> str:
    return hashlib.sha1(str(row["id"]).encode("utf-8")).hexdigest()


def main(source: Path) -> None:
    relabels_path = HERE / "relabels.json"
    relabels: dict[str, dict[str, object]] = (
        json.loads(relabels_path.read_text(encoding="utf-8")) if relabels_path.exists() else {}
    )
    splits: dict[str, list[dict[str, object]]] = {"dev": [], "test": []}
    for name in WRITERS:
        rows = sorted(rows_of(source / name), key=key)
        half = (len(rows) + 1) // 2
        for i, row in enumerate(rows):
            row = dict(row)
            change = relabels.get(str(row["id"]))
            if change is not None:
                reason = str(change["reason"])
                row.update({k: v for k, v in change.items() if k != "reason"})
                row["note"] = f"{row['note']} [relabelled: {reason}]"
            splits["dev" if i < half else "test"].append(row)
    for split, rows in splits.items():
        rows.sort(key=lambda r: str(r["id"]))
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (HERE / f"{split}.jsonl").write_text(text, encoding="utf-8")
        print(f"{split}: {len(rows)} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/unseen"))
