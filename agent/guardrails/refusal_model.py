"""A small learned reading of refusals, beside the cues: does this reply decline this question?

The cues of ``tone_rules.yaml`` recognise declines by their words (不议价, 没有现货 ...); a decline
in words no cue lists (价格都是统一的 to 能便宜20吗, a substitute offered for what was asked) goes
unseen. This model reads what cues cannot list: the characters and character pairs of a reply's
opening and of the customer's question, weighted by a logistic regression trained on labelled
drafts (``python -m agent.guardrails.refusal_train``, numpy only, deterministic). It is consulted
only where the rules leave a draft undecided: no declared verdict, no granting opener, no intent
the draft answers or declines, no cue; and only with the customer's question.

The file (``refusal.model`` of tone_rules.yaml, beside it in the corpus) holds the weights of
the features seen at least twice in training, the bias, how many opening characters are read,
and what it was trained on. ``refusal.model_threshold`` is the probability above which a reply
counts as declining.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

FORMAT = 1
QUERY_CACHE = 4096  # customer queries whose part of the score one model remembers


def draft_features(text: str, chars: int) -> list[str]:
    """The features of a normalised reply: each character and pair of its first ``chars``."""
    head = text[:chars]
    return ["d" + c for c in head] + ["d" + head[i : i + 2] for i in range(len(head) - 1)]


def query_features(text: str) -> list[str]:
    """The features of a normalised customer query: each character and character pair."""
    return ["q" + c for c in text] + ["q" + text[i : i + 2] for i in range(len(text) - 1)]


@dataclass(frozen=True)
class RefusalModel:
    """Weights of a logistic regression over draft and query features, and its operating point."""

    chars: int
    bias: float
    weights: Mapping[str, float]  # feature (d… of the reply, q… of the query) -> weight
    cut: float = 0.0  # the logit of the threshold: a score above it declines
    about: Mapping[str, Any] = field(default_factory=dict)
    queries: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    # the weights split by side, keyed by the characters alone (no prefix to build per call)
    _draft: dict[str, float] = field(default_factory=dict, init=False, compare=False, repr=False)
    _query: dict[str, float] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key, weight in self.weights.items():
            (self._draft if key[0] == "d" else self._query)[key[1:]] = weight

    def query_part(self, query: str, normalized: Callable[[str], str]) -> float:
        """The query's part of the score, remembered per query as given (``normalized`` makes
        the matching form: a query is checked against several drafts)."""
        part = self.queries.get(query)
        if part is None:
            text = normalized(query)
            part = _sum(self._query, text, len(text))
            if len(self.queries) >= QUERY_CACHE:
                self.queries.clear()
            self.queries[query] = part
        return part

    def score(self, draft: str, query: str, normalized: Callable[[str], str]) -> float:
        """The logit that ``draft`` (normalised) declines ``query`` (as given)."""
        return self.bias + self.query_part(query, normalized) + _sum(self._draft, draft, self.chars)

    def declines(self, draft: str, query: str, normalized: Callable[[str], str]) -> bool:
        return self.score(draft, query, normalized) > self.cut

    def at(self, threshold: float) -> RefusalModel:
        """The same weights at another operating point (a probability strictly between 0 and 1)."""
        return RefusalModel(self.chars, self.bias, self.weights, logit(threshold), self.about)


def _sum(weights: dict[str, float], text: str, chars: int) -> float:
    """The summed weights of the characters and character pairs of ``text[:chars]``, each as
    often as it occurs (what :func:`draft_features` and :func:`query_features` list, without
    their prefixes): no set to build, which is most of the cost of a call."""
    head = text[:chars]
    get = weights.get
    return sum(map(get, head, repeat(0.0))) + sum(map(get, map(str.__add__, head, head[1:]), repeat(0.0)))


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def to_json(model: RefusalModel) -> str:
    """The model file: sorted weights rounded to 4 decimals (stable across runs and machines)."""
    body = {
        "format": FORMAT,
        "chars": model.chars,
        "bias": round(model.bias, 4),
        "about": dict(model.about),
        "weights": {k: round(v, 4) for k, v in sorted(model.weights.items()) if round(v, 4) != 0.0},
    }
    return json.dumps(body, ensure_ascii=False, indent=0, sort_keys=False) + "\n"


def read_model(path: Path) -> RefusalModel:
    """Read a model file; ValueError (what is wrong, in the supervisors' words) when it is not one."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError("不存在（应和 tone_rules.yaml 放在同一个目录）") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"不是可读的 JSON（{exc}）") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"不是 format {FORMAT} 的拒绝模型文件")
    chars, bias, weights = raw.get("chars"), raw.get("bias"), raw.get("weights")
    if not isinstance(chars, int) or isinstance(chars, bool) or not 1 <= chars <= 200:
        raise ValueError("的 chars 应是 1 到 200 的整数")
    if not isinstance(bias, (int, float)) or isinstance(bias, bool):
        raise ValueError("的 bias 应是数字")
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and k[:1] in ("d", "q") and isinstance(v, (int, float)) and not isinstance(v, bool)
        for k, v in weights.items()
    ):
        raise ValueError("的 weights 应是 d…/q… 特征到数字的映射")
    about = raw.get("about")
    if not isinstance(about, dict):
        about = {}
    return RefusalModel(chars=chars, bias=float(bias), weights={k: float(v) for k, v in weights.items()}, about=about)
