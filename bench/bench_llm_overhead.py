"""What the openai backend adds per draft over a bare SDK call, both against a zero-delay fake server.

The backend renders the prompt, counts tokens against the budget, calls ChatOpenAI and parses
the JSON answer; the baseline is ``openai.OpenAI().chat.completions.create`` with the same
messages and parameters. Calls alternate so that both see the same machine. Goal: the
difference is at most 30 ms at p95.

    .venv/bin/python bench/bench_llm_overhead.py [--n 300]

:func:`measure_overhead` is importable (the drafting benchmark can report its figures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletionMessageParam

from agent.config import REPO_ROOT, Settings
from agent.drafting.base import Candidate, Grounding, Question
from agent.drafting.llm import OpenAIBackend, fit_prompt
from agent.workspace import Workspace, load_workspace

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes.openai_server import FakeOpenAIServer  # the repository root is on the path now

GOAL_P95_MS = 30.0
MESSAGE = "亲，这件衣服能便宜点吗？今天下单什么时候发货，用什么快递？"
ANSWER = json.dumps(
    {
        "draft": "亲，非常抱歉，本店商品都是实价销售。下午三点前付款当天发货，默认申通。",
        "is_refusal": True,
        "cited_ids": [],
    },
    ensure_ascii=False,
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Overhead:
    """Milliseconds per call of the backend and of the bare SDK call, and what the backend adds."""

    calls: int
    scripts: int
    prompt_tokens: int
    backend_p50_ms: float
    backend_p95_ms: float
    bare_p50_ms: float
    bare_p95_ms: float
    render_p50_ms: float
    first_call_ms: float

    @property
    def overhead_p50_ms(self) -> float:
        return self.backend_p50_ms - self.bare_p50_ms

    @property
    def overhead_p95_ms(self) -> float:
        return self.backend_p95_ms - self.bare_p95_ms

    @property
    def ratio_p95(self) -> float:
        return self.backend_p95_ms / self.bare_p95_ms if self.bare_p95_ms else float("inf")

    @property
    def meets_goal(self) -> bool:
        return self.overhead_p95_ms <= GOAL_P95_MS

    def lines(self) -> list[str]:
        verdict = "met" if self.meets_goal else "MISSED"
        return [
            f"openai backend overhead ({self.calls} calls each, {self.scripts} scripts,"
            f" {self.prompt_tokens} prompt tokens)",
            f"  backend draft       p50 {self.backend_p50_ms:7.2f} ms   p95 {self.backend_p95_ms:7.2f} ms",
            f"  bare SDK create     p50 {self.bare_p50_ms:7.2f} ms   p95 {self.bare_p95_ms:7.2f} ms",
            f"  overhead            p50 {self.overhead_p50_ms:7.2f} ms   p95 {self.overhead_p95_ms:7.2f} ms"
            f"   (x{self.ratio_p95:.2f} at p95)",
            f"  of which render+fit p50 {self.render_p50_ms:7.2f} ms",
            f"  first draft (client set up) {self.first_call_ms:.1f} ms",
            f"  goal: overhead <= {GOAL_P95_MS:g} ms at p95: {verdict}",
        ]


def _grounding(settings: Settings, workspace: Workspace) -> Grounding:
    """The message above with the first ``top_k`` corpus scripts as its candidates, best first."""
    scripts = workspace.corpus.scripts[: settings.top_k]
    cands = tuple(Candidate(s, 1.0 - i / 10) for i, s in enumerate(scripts))
    return Grounding(MESSAGE, (Question(MESSAGE, cands),), workspace.shop("default"))


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def measure_overhead(calls: int = 300, warmup: int = 20) -> Overhead:
    """Time ``calls`` backend drafts and as many bare SDK calls, alternating, after a warm-up."""
    with FakeOpenAIServer() as server:
        server.always(ANSWER)
        settings = Settings(llm_base_url=server.base_url, llm_api_key="bench", llm_max_retries=0)
        workspace = load_workspace(settings)
        grounding = _grounding(settings, workspace)
        backend = OpenAIBackend(settings, workspace.prompt)
        prompt = workspace.prompt(settings.prompt_version)
        fitted = fit_prompt(prompt, grounding, settings)
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": fitted.rendered.system},
            {"role": "user", "content": fitted.rendered.user},
        ]
        params = prompt.params.call_kwargs()
        params["max_completion_tokens"] = params.pop("max_tokens", None)
        bare = openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0, timeout=settings.llm_timeout_s)

        def bare_call() -> object:
            return bare.chat.completions.create(model=settings.llm_model, messages=messages, **params)

        first = _timed(lambda: backend.draft(grounding))
        for _ in range(warmup):
            backend.draft(grounding)
            bare_call()
        backend_ms, bare_ms, render_ms = [], [], []
        for _ in range(calls):
            backend_ms.append(_timed(lambda: backend.draft(grounding)))
            bare_ms.append(_timed(bare_call))
            render_ms.append(_timed(lambda: fit_prompt(prompt, grounding, settings)))
        bare.close()
    return Overhead(
        calls=calls,
        scripts=len(fitted.candidates),
        prompt_tokens=fitted.tokens,
        backend_p50_ms=statistics.median(backend_ms),
        backend_p95_ms=_percentile(backend_ms, 0.95),
        bare_p50_ms=statistics.median(bare_ms),
        bare_p95_ms=_percentile(bare_ms, 0.95),
        render_p50_ms=statistics.median(render_ms),
        first_call_ms=first,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300, help="calls of each kind (default 300)")
    args = parser.parse_args(argv)
    figures = measure_overhead(args.n)
    print("\n".join(figures.lines()))
    return 0 if figures.meets_goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
