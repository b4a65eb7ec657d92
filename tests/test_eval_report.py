"""The HTML report: one self-contained page, customer text escaped, findings marked, rendered by Chromium."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from agent.cli import main
from agent.config import REPO_ROOT, Settings
from agent.evaluation.report import render_report, segments
from agent.evaluation.runner import RunOptions, run_suite
from agent.evaluation.runs import Run, load_run
from agent.evaluation.suite import load_suite
from agent.retrieval import HashEmbedder
from agent.retrieval.service import get_retriever
from agent.workspace import load_workspace

GOLDEN = REPO_ROOT / "eval" / "golden.jsonl"
CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<script>alert(1)</script><b>能便宜点吗</b> & 还有别的吗"


@pytest.fixture(scope="module")
def hash_retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("idx"), corpus_dir=REPO_ROOT / "corpus")
    yield get_retriever(settings, load_workspace(REPO_ROOT), embedder=HashEmbedder())


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, hash_retriever: object) -> tuple[Run, Run]:
    """Two real script-backend runs on a slice of the golden set plus a hostile case: top_k 5 and top_k 1."""
    root = tmp_path_factory.mktemp("report")
    lines = GOLDEN.read_text(encoding="utf-8").splitlines()[:24]
    hostile = {"id": "hostile-01", "group": "rule_breaking", "category": "bargaining", "message": HOSTILE,
               "golden": "亲，非常抱歉，本店商品都是明码实价 <b>&</b>。", "expect_refusal": True}  # fmt: skip
    dataset = root / "golden.jsonl"
    dataset.write_text("\n".join([*lines, json.dumps(hostile, ensure_ascii=False)]) + "\n", encoding="utf-8")
    runs = []
    for top_k in (5, 1):
        suite_path = root / f"script-k{top_k}.yaml"
        suite = {
            "name": f"k{top_k}",
            "dataset": str(dataset),
            "backends": ["script"],
            "metrics": ["rouge_l", "chrf", "bleu", "must_include", "must_not", "tone", "refusal", "hit_at_k"],
            "settings": {"top_k": top_k},
            "thresholds": {"rouge_l": {"max_regression": 0.01}},
        }
        suite_path.write_text(yaml.safe_dump(suite, allow_unicode=True), encoding="utf-8")
        options = RunOptions(runs_dir=root / "runs", retriever=hash_retriever)  # type: ignore[arg-type]
        (run,) = run_suite(load_suite(suite_path), options)
        runs.append(run)
    return runs[0], runs[1]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _Collector()
    collector.feed(html)
    return collector.tags


def test_segments_cut_text_at_span_edges() -> None:
    parts = segments("亲亲，但是可以", [(0, 2, "over_intimacy"), (3, 5, "contains_danshi"), (3, 5, "must_not")])
    assert [(s.text, s.marks) for s in parts] == [
        ("亲亲", "over_intimacy"),
        ("，", ""),
        ("但是", "contains_danshi must_not"),
        ("可以", ""),
    ]


def test_the_page_is_self_contained_and_escapes_customer_text(two_runs: tuple[Run, Run]) -> None:
    a, b = two_runs
    html = render_report(a, b)
    tags = parse(html)
    assert not [t for t, attrs in tags if t in ("script", "link", "img", "iframe")]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;" in html and "<b>能便宜点吗" not in html
    assert "明码实价 &lt;b&gt;&amp;&lt;/b&gt;" in html
    rows = [attrs for t, attrs in tags if t == "tr" and attrs.get("class") == "case"]
    assert len(rows) == len(a.cases) == 25
    assert sum(1 for t, _ in tags if t == "svg") == len(a.summary["metrics"])
    assert html.count('class="draft draft-A"') == html.count('class="draft draft-B"') == 25


def test_guardrail_findings_are_marked_at_their_spans(two_runs: tuple[Run, Run], tmp_path: Path) -> None:
    a, _ = two_runs
    record = json.loads(json.dumps(a.cases[0]))
    text = "亲亲，但是这个价格我们不能改哦"
    record["draft"]["draft"] = text
    record["metrics"]["tone"] = {
        "value": 0.0,
        "reason": "r",
        "spans": [[0, 2, "over_intimacy"], [3, 5, "contains_danshi"]],
    }
    html = render_report(Run(a.path, a.summary, [record]))
    assert '<mark class="over_intimacy" title="over_intimacy">亲亲</mark>' in html
    assert '<mark class="contains_danshi" title="contains_danshi">但是</mark>' in html


def test_kefu_eval_report_writes_the_page(two_runs: tuple[Run, Run], tmp_path: Path) -> None:
    a, b = two_runs
    out = tmp_path / "report.html"
    code = main(["eval", "report", str(a.path), "--compare", str(b.path), "--html", str(out)])
    assert code == 0
    html = out.read_text(encoding="utf-8")
    assert a.run_id in html and b.run_id in html
    assert load_run(a.path).summary == a.summary
    assert main(["eval", "report", "no-such-run", "--html", str(out), "--runs-dir", str(tmp_path)]) == 1


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make browser-deps)")
def test_the_report_renders_in_chromium(two_runs: tuple[Run, Run], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    a, b = two_runs
    page_path = tmp_path / "report.html"
    page_path.write_text(render_report(a, b), encoding="utf-8")
    golden = a.cases[3]["golden"]
    requested: list[str] = []
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_path.as_uri())
            assert page.locator("tr.case").count() == len(a.cases)
            assert page.get_by_text(golden, exact=True).first.is_visible()
            assert page.locator("figure.chart svg rect").count() > 0
            width = page.evaluate("() => document.querySelector('figure.chart').getBoundingClientRect().width")
            assert width > 100
            page.screenshot(path=str(tmp_path / "summary.png"))
            page.evaluate("() => document.querySelector('table.cases').scrollIntoView()")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert requested == [page_path.as_uri()]
    assert shot.stat().st_size > 10_000
    keep = REPO_ROOT / "eval" / "runs"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, keep / "report-screenshot.png")  # for humans; eval/runs/ is git-ignored
