"""Eval runs of the openai backend against the fake LLM server: the disk cache, dry runs, prompt comparison."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from agent.cli import main
from agent.config import REPO_ROOT, Settings, get_settings
from agent.errors import EvalError
from agent.evaluation.dataset import load_golden
from agent.evaluation.estimate import estimate_suite
from agent.evaluation.runner import RunOptions, run_suite
from agent.evaluation.suite import Suite, load_suite
from agent.retrieval import HashEmbedder
from agent.retrieval.service import get_retriever
from agent.workspace import load_workspace
from tests.fakes.fixtures import FAKE_MODEL
from tests.fakes.openai_server import FakeOpenAIServer

GOLDEN = REPO_ROOT / "eval" / "golden.jsonl"
METRICS = ["rouge_l", "chrf", "bleu", "embedding", "must_include", "must_not", "tone", "refusal", "hit_at_k"]
# What the deliberately worse prompt tells the model, and what a model that obeys it answers.
WORSE_RULE = "语气越亲热越好：称呼顾客“亲亲”“宝贝”，自称“小的”，结尾加“么么哒”。"
WORSE_ANSWER = "亲亲宝贝，小的马上帮您看看，但是要稍等哦，么么哒"


def answer(draft: str, is_refusal: bool = False, cited: Iterable[str] = ()) -> str:
    return json.dumps({"draft": draft, "is_refusal": is_refusal, "cited_ids": list(cited)}, ensure_ascii=False)


@pytest.fixture(scope="module")
def hash_retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The real hybrid retriever over the real corpus, with the fast fake embedder."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("idx"), corpus_dir=REPO_ROOT / "corpus")
    yield get_retriever(settings, load_workspace(REPO_ROOT), embedder=HashEmbedder())


@pytest.fixture
def options(tmp_path: Path, hash_retriever: object) -> RunOptions:
    return RunOptions(limit=6, runs_dir=tmp_path / "runs", retriever=hash_retriever, embedder=HashEmbedder())  # type: ignore[arg-type]


def write_suite(directory: Path, prompts: list[str], **fields: object) -> Suite:
    data = {
        "name": "llm",
        "dataset": str(GOLDEN),
        "backends": ["openai"],
        "prompts": prompts,
        "metrics": METRICS,
        "concurrency": 1,
        "thresholds": {name: {"max_regression": 0.02} for name in METRICS},
        **fields,
    }
    path = directory / f"llm-{'-'.join(prompts)}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_suite(path)


def test_a_second_run_makes_no_llm_calls(fake_llm: FakeOpenAIServer, tmp_path: Path, options: RunOptions) -> None:
    fake_llm.always(answer("您好，本店默认发申通快递，普通城市包邮，一般2到4天送达。"))
    suite = write_suite(tmp_path, ["draft.v1"], concurrency=3)

    (first,) = run_suite(suite, options)
    calls = len(fake_llm.chat_requests)
    assert calls >= 6
    assert first.summary["llm_calls"] == calls and first.summary["cache_hits"] == 0

    (second,) = run_suite(suite, options)
    assert len(fake_llm.chat_requests) == calls  # the fake server saw nothing new
    assert second.summary["llm_calls"] == 0 and second.summary["cache_hits"] == calls
    assert [c["draft"]["draft"] for c in second.cases] == [c["draft"]["draft"] for c in first.cases]
    assert second.path != first.path

    (third,) = run_suite(suite, replace(options, use_cache=False))
    assert len(fake_llm.chat_requests) == 2 * calls
    assert third.summary["cache"] == "off" and third.summary["cache_hits"] == 0


def test_a_run_records_what_it_was_made_from(fake_llm: FakeOpenAIServer, tmp_path: Path, options: RunOptions) -> None:
    fake_llm.always(answer("您好，本店默认发申通快递。"))
    (run,) = run_suite(write_suite(tmp_path, ["draft.v1"]), replace(options, limit=2))

    summary = json.loads((run.path / "summary.json").read_text(encoding="utf-8"))
    lines = (run.path / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [c.id for c in load_golden(GOLDEN)[:2]]
    assert set(summary["prompts"]) == {"draft.v1", "revise.v1"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in summary["prompts"].values())
    assert summary["model"] == FAKE_MODEL and summary["endpoint"] == fake_llm.base_url
    assert summary["parameters"]["draft"]["temperature"] is not None
    assert re.fullmatch(r"[0-9a-f]{64}", summary["corpus_hash"])
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", summary["git_commit"])
    assert summary["dataset"]["path"] == str(GOLDEN)
    record = json.loads(lines[0])
    assert set(record["metrics"]) == set(METRICS)
    assert all({"value", "reason"} <= set(m) for m in record["metrics"].values())


def test_a_dry_run_estimates_calls_and_tokens_and_calls_nothing(
    fake_llm: FakeOpenAIServer, tmp_path: Path, options: RunOptions
) -> None:
    suite = write_suite(tmp_path, ["draft.v1"])
    (estimate,) = estimate_suite(suite, options)
    assert fake_llm.chat_requests == []
    assert estimate.cases == 6 and estimate.llm_calls == 6 and estimate.cached_calls == 0
    assert estimate.prompt_tokens > 6 * 500  # the draft prompt alone is several hundred tokens
    assert estimate.max_revision_calls == 12

    fake_llm.always(answer("您好，本店默认发申通快递。"))
    run_suite(suite, options)
    calls = len(fake_llm.chat_requests)
    (again,) = estimate_suite(suite, options)
    assert again.cached_calls == 6 and len(fake_llm.chat_requests) == calls


def test_an_openai_suite_without_an_llm_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path, ["draft.v1"])
    code = main(["eval", "run", str(suite.path), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "no LLM is configured" in err and "Traceback" not in err


def test_compare_flags_a_deliberately_worsened_prompt(
    fake_llm: FakeOpenAIServer,
    tmp_path: Path,
    options: RunOptions,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO_ROOT / "prompts", prompts)
    good = (prompts / "draft.v1.yaml").read_text(encoding="utf-8")
    rules = re.search(r"  语气规则（必须遵守）：\n(?:  [^\n]*\n)+?\n", good)
    assert rules is not None
    worse = good.replace("version: draft.v1", "version: draft.v9").replace(rules.group(0), f"  {WORSE_RULE}\n\n")
    (prompts / "draft.v9.yaml").write_text(worse, encoding="utf-8")
    monkeypatch.setenv("KEFU_PROMPTS_DIR", str(prompts))
    get_settings.cache_clear()

    # The fake model answers draft.v1 like the golden reply, and obeys draft.v9's worse tone rule.
    for case in load_golden(GOLDEN)[:6]:
        fake_llm.enqueue(answer(case.golden, case.expect_refusal, case.expected_ids))
    (good_run,) = run_suite(write_suite(tmp_path, ["draft.v1"]), options)
    assert len(fake_llm.chat_requests) == 6
    fake_llm.always(answer(WORSE_ANSWER))
    (worse_run,) = run_suite(write_suite(tmp_path, ["draft.v9"]), options)
    sent = fake_llm.chat_requests[6:]
    assert sent and WORSE_RULE in sent[0].messages_text()  # the worse prompt is what went out
    assert good_run.summary["prompts"]["draft.v1"] != worse_run.summary["prompts"]["draft.v9"]

    code = main(["eval", "compare", str(good_run.path), str(worse_run.path), "--fail-on-regression"])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"tone .*REGRESSION", out) and "6 case(s) got worse" in out

    assert main(["eval", "compare", str(good_run.path), str(worse_run.path)]) == 0  # reported, not gated
    assert main(["eval", "compare", str(good_run.path), str(good_run.path), "--fail-on-regression"]) == 0


def test_the_judge_grades_each_draft_and_is_cached(
    fake_llm: FakeOpenAIServer, tmp_path: Path, options: RunOptions
) -> None:
    # Sequential cases: each draft call is followed by its judge call.
    fake_llm.enqueue(
        answer("您好，本店默认发申通快递，普通城市包邮。"),
        json.dumps({"score": 5, "reason": "事实齐全"}, ensure_ascii=False),
        answer("您好，本店默认发申通快递。"),
        json.dumps({"score": 3, "reason": "漏了运费"}, ensure_ascii=False),
    )
    suite = write_suite(tmp_path, ["draft.v1"], judge=True)
    (run,) = run_suite(suite, replace(options, limit=2))
    assert [c["metrics"]["judge"]["value"] for c in run.cases] == [1.0, 0.5]
    assert "漏了运费" in run.cases[1]["metrics"]["judge"]["reason"]
    assert run.summary["metrics"]["judge"]["mean"] == 0.75
    assert "judge.v1" in run.summary["prompts"]
    judge_request = fake_llm.chat_requests[1].messages_text()
    assert load_golden(GOLDEN)[0].golden in judge_request

    (again,) = run_suite(suite, replace(options, limit=2))
    assert len(fake_llm.chat_requests) == 4 and again.summary["metrics"]["judge"]["mean"] == 0.75


def test_the_judge_is_skipped_without_an_llm(tmp_path: Path, options: RunOptions) -> None:
    data = yaml.safe_load(write_suite(tmp_path, ["draft.v1"]).path.read_text(encoding="utf-8"))
    data.update(backends=["script"], judge=True)
    path = tmp_path / "script-judged.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (run,) = run_suite(load_suite(path), replace(options, limit=2))
    assert run.summary["notes"] == ["judge skipped: no LLM is configured"]
    assert run.summary["metrics"]["judge"]["mean"] is None
    assert run.summary["llm_calls"] == 0 and run.summary["prompts"] == {}


def test_variants_follow_the_suite_and_the_command_line(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["draft.v1", "draft.v2"], backends=["script", "openai"])
    assert suite.variants() == [("script", None), ("openai", "draft.v1"), ("openai", "draft.v2")]
    assert suite.variants(backend="openai", prompts=["draft.v7"]) == [("openai", "draft.v7")]
    assert suite.variants(backend="script") == [("script", None)]


def test_a_missing_prompt_version_fails_before_any_case(
    fake_llm: FakeOpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path, ["draft.v1"])
    code = main(["eval", "run", str(suite.path), "--prompt", "draft.v42", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 1 and "draft.v42" in err and err.count("\n") == 1
    assert fake_llm.chat_requests == [] and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["eval", "run", "no/such/suite.yaml"], 1, "cannot read the suite"),
        (["eval", "run", str(REPO_ROOT / "eval" / "suites" / "script.yaml"), "--backend", "gpt"], 2, "--backend"),
        (["eval", "compare", "run-a", "run-b"], 1, "no run 'run-a'"),
    ],
)
def test_bad_input_is_one_line(args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_suite_with_an_unknown_metric_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndataset: x.jsonl\nbackends: [script]\nmetrics: [rouge_l, bertscore]\n", encoding="utf-8"
    )
    with pytest.raises(EvalError, match=r"bad\.yaml: field .*unknown metric 'bertscore'"):
        load_suite(path)


def test_a_dry_run_of_the_script_suite_counts_no_calls(capsys: pytest.CaptureFixture[str]) -> None:
    suite = REPO_ROOT / "eval" / "suites" / "script.yaml"
    assert main(["eval", "run", str(suite), "--dry-run", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was called" in out
    assert re.search(r"│ script script\s+│\s+3 │\s+0 │\s+0 │\s+0 │", out)


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return super().embed_queries(texts)


def test_embeddings_of_unchanged_texts_are_reused(tmp_path: Path, options: RunOptions) -> None:
    data = {"name": "emb", "dataset": str(GOLDEN), "backends": ["script"], "metrics": ["embedding"]}
    path = tmp_path / "emb.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    embedder = CountingEmbedder()
    (first,) = run_suite(load_suite(path), replace(options, embedder=embedder))
    assert len(set(embedder.texts)) == len(embedder.texts) >= 6
    embedder.texts.clear()
    (second,) = run_suite(load_suite(path), replace(options, embedder=embedder))
    assert embedder.texts == []
    assert second.summary["metrics"]["embedding"] == first.summary["metrics"]["embedding"]
    run_suite(load_suite(path), replace(options, embedder=embedder, use_cache=False))
    assert len(embedder.texts) >= 6
