"""``python -m agent.drafting.fit train``: learn the fit model and write it into corpus/composer.yaml.

Training messages: question variants of the corpus held out of an index built without them (two
per script, and every variant of twelve scripts removed whole, so that "the corpus lacks this"
is learnt too), the golden set and the unseen dev split (never test), each question with the
candidates the hybrid retriever returns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from agent.config import REPO_ROOT
from agent.drafting.base import Candidate
from agent.drafting.fit import FEATURES, Example, FitModel, choices, learn, operating_point

FIT_MARK = "# --- fit model: written by `python -m agent.drafting.fit train`; do not edit by hand ---"
TRAIN_SETS = ("eval/golden.jsonl", "eval/unseen/dev.jsonl")


def examples_from(paths: list[Path]) -> list[Example]:
    """Per question of every case, the retrieved candidates and the scripts the case expects."""
    from agent.config import get_settings
    from agent.drafting.pipeline import Drafter, prepare_message
    from agent.evaluation.dataset import load_golden
    from agent.types import Message

    settings = get_settings()
    drafter = Drafter(settings)
    workspace = drafter.snapshot()
    out: list[Example] = []
    for path in paths:
        for case in load_golden(path):
            text, _ = prepare_message(case.message, settings)
            message = Message(text=case.message, shop=case.shop, order=case.order, turns=case.turns)
            grounding = drafter.ground(message, text, workspace)
            answers = frozenset(case.expected_ids)
            for question in grounding.questions:
                if question.candidates and not question.candidates[0].emergency:
                    out.append(Example(question.text, question.candidates, answers))
    return out


def held_out_examples(per_script: int = 2, whole: int = 12, seed: int = 7) -> list[Example]:
    """Question variants held out of an index built without them: answerable by their own script,
    and, for ``whole`` scripts removed entirely, answerable by none (the corpus lacks the situation)."""
    import random

    from agent.config import get_settings
    from agent.retrieval.bm25 import BM25Index, Tokenizer, script_document
    from agent.retrieval.embedder import make_embedder
    from agent.retrieval.homophone import corrector_for
    from agent.retrieval.hybrid import HybridRetriever
    from agent.retrieval.index import DenseIndex, sync
    from agent.retrieval.service import CENTROID_WEIGHT, FUSION
    from agent.retrieval.vectorstore import MemoryStore
    from agent.workspace import load_workspace

    settings = get_settings()
    workspace = load_workspace(settings)
    rng = random.Random(seed)
    scripts = list(workspace.corpus.scripts)
    removed = {s.id for s in rng.sample(scripts, whole)}
    kept, queries = [], []
    for script in scripts:
        held = set(rng.sample(range(len(script.questions)), per_script))
        queries += [(script.questions[i], script.id) for i in sorted(held)]
        if script.id not in removed:
            rest = [q for i, q in enumerate(script.questions) if i not in held]
            kept.append(script.model_copy(update={"questions": rest}))
    embedder = make_embedder(settings)
    store = MemoryStore()
    sync(store, kept, embedder)
    dense = DenseIndex(store, embedder, CENTROID_WEIGHT)
    lexical = BM25Index([script_document(s) for s in kept], Tokenizer(workspace.retrieval_dir)).build()
    retriever = HybridRetriever(dense, lexical, "hybrid", FUSION, correct=corrector_for(workspace.retrieval_dir))
    by_id = {s.id: s for s in kept}
    found = retriever.retrieve_many([q for q, _ in queries], settings.top_k)
    out = []
    for (question, sid), hits in zip(queries, found, strict=True):
        cands = tuple(
            Candidate(by_id[h.script_id], h.score, dense_rank=h.dense_rank, bm25_rank=h.bm25_rank)
            for h in hits
            if h.script_id in by_id
        )
        if cands:
            out.append(Example(question, cands, frozenset() if sid in removed else frozenset({sid})))
    return out


def write_model(composer_yaml: Path, model: FitModel) -> None:
    text = composer_yaml.read_text(encoding="utf-8")
    head = text.split(FIT_MARK)[0].rstrip("\n")
    block = yaml.safe_dump({"fit": model.model_dump(exclude_none=True)}, allow_unicode=True, sort_keys=False)
    composer_yaml.write_text(f"{head}\n\n{FIT_MARK}\n{block}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m agent.drafting.fit")
    parser.add_argument("command", choices=["train"])
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.45,
        help="operating point; 0.45 was chosen on the unseen dev split's drafts (ok-precision against needs_review)",
    )
    parser.add_argument(
        "--target-precision", type=float, default=None, help="instead: the lowest threshold this precise"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the model; write nothing")
    args = parser.parse_args()
    paths = [REPO_ROOT / p for p in TRAIN_SETS if (REPO_ROOT / p).is_file()]
    held = held_out_examples()
    examples = [*held, *examples_from(paths)]
    weights, bias = learn(examples)
    trained_on = "held-out corpus variants, " + ", ".join(p.relative_to(REPO_ROOT).as_posix() for p in paths)
    model = FitModel(weights=weights, bias=bias, threshold=0.5, trained_on=f"{trained_on} ({len(examples)} questions)")
    if args.target_precision is not None:
        model = operating_point(model, examples, args.target_precision)
    answered, right, answerable = choices(model, examples, model.threshold if args.target_precision else args.threshold)
    if args.target_precision is None:
        model = model.model_copy(
            update={
                "threshold": args.threshold,
                "precision": round(right / answered, 4) if answered else None,
                "recall": round(right / answerable, 4) if answerable else None,
            }
        )
    print(f"{len(examples)} questions, {answerable} answerable; at threshold {model.threshold}:")
    print(f"  answered {answered}, right {right}, precision {model.precision}, recall {model.recall}")
    for name in FEATURES:
        print(f"  {name:>16} {weights[name]:+.3f}")
    if not args.dry_run:
        write_model(REPO_ROOT / "corpus" / "composer.yaml", model)
        print("wrote corpus/composer.yaml (fit:)")


if __name__ == "__main__":
    main()
