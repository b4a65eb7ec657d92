"""The optional LLM judge: ``prompts/judge.v1.yaml`` grades a draft against the golden reply (1-5).

Only suites that set ``judge: true`` use it, and only when an LLM is configured. Its calls go
through the same disk cache as drafting, so a re-run costs nothing.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from agent.drafting.prompts import load_prompt, neutralise_tags
from agent.errors import BackendError
from agent.evaluation.metrics import Judge, Score

if TYPE_CHECKING:
    from agent.evaluation.cache import CachedOpenAIBackend
    from agent.evaluation.dataset import GoldenCase

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_verdict(content: str) -> Score:
    """A Score in 0..1 from the judge's ``{"score": 1-5, "reason": ...}`` answer."""
    match = _OBJECT.search(content or "")
    try:
        obj = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        obj = None
    score = obj.get("score") if isinstance(obj, dict) else None
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if not isinstance(score, int | float) or not 1 <= score <= 5:
        shown = (content or "").strip().replace("\n", " ")[:80]
        return Score(None, f"the judge's answer has no score from 1 to 5: {shown!r}")
    reason = str(obj.get("reason", "")).strip() if isinstance(obj, dict) else ""
    return Score((float(score) - 1) / 4, f"{score:g}/5 {reason}".strip())


def make_judge(llm: CachedOpenAIBackend, version: str) -> Judge:
    """A judge that renders ``version`` for each case and asks ``llm`` (cached) to grade the draft."""
    prompt = load_prompt(version, llm.settings.prompts_dir)

    def judge(case: GoldenCase, draft: str) -> Score:
        rendered = prompt.render(
            {
                "customer_message": neutralise_tags(case.message),
                "golden": case.golden,
                "draft": neutralise_tags(draft),
                "must_include": case.must_include,
                "expect_refusal": case.expect_refusal,
            }
        )
        try:
            content = llm.complete(rendered, prompt.params.call_kwargs())
        except BackendError as exc:
            return Score(None, f"judge failed: {exc}")
        return parse_verdict(content)

    return judge
