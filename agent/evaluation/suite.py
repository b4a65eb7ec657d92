"""Eval suites (``eval/suites/*.yaml``): what to run, how to score it, and what counts as good enough.

::

    name: script
    description: The offline composer on the golden set (the CI suite).
    dataset: ../golden.jsonl          # relative to the suite file
    backends: [script]                # script, openai
    prompts: [draft.v1]               # prompt versions the openai backend runs with
    metrics: [rouge_l, chrf, bleu, embedding, must_include, must_not, tone, refusal, hit_at_k]
    k: 5                              # depth for hit_at_k
    concurrency: 4
    judge: false                      # also score with prompts/judge.v1.yaml (needs an LLM)
    settings: {top_k: 5}              # KEFU_* settings for this suite
    thresholds:
      rouge_l: {min: 0.3, max_regression: 0.02}
      latency_ms: {max: 200}

``min``/``max`` bound a run's mean; ``max_regression`` bounds how much worse run B may be than
run A in ``kefu eval compare`` (in the metric's own unit, in the direction that is worse).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.config import LLM_BACKEND
from agent.datafile import field_errors
from agent.errors import EvalError
from agent.evaluation.metrics import METRICS, unknown_metrics

BackendName = Literal["script", "openai", "direct"]
JUDGE_PROMPT = "judge.v1"


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    max_regression: float | None = Field(default=None, ge=0)


class Suite(BaseModel):
    """A parsed suite file; ``path`` and ``sha256`` say which file it was."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    description: str = ""
    dataset: str = ""
    # Named splits run side by side (``{dev: ../unseen/dev.jsonl, test: ../unseen/test.jsonl}``);
    # each split gets one run per backend, named SUITE_SPLIT.
    datasets: dict[str, str] = Field(default_factory=dict)
    split: str = ""  # set by kefu on the per-split copy of a suite
    backends: list[BackendName] = Field(min_length=1)
    prompts: list[str] = Field(default_factory=lambda: ["draft.v1"])
    metrics: list[str] = Field(min_length=1)
    k: int = Field(default=5, gt=0)
    concurrency: int = Field(default=4, gt=0, le=64)
    judge: bool = False
    judge_prompt: str = JUDGE_PROMPT
    settings: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    path: Path = Path()
    sha256: str = ""

    @model_validator(mode="after")
    def _known_metrics(self) -> Suite:
        if not self.dataset and not self.datasets:
            raise ValueError("a suite names a dataset or datasets")
        unknown = unknown_metrics(self.metrics) + unknown_metrics(list(self.thresholds))
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; known metrics: {', '.join(METRICS)}")
        return self

    def splits(self) -> list[Suite]:
        """One suite per named split (this suite itself when it has a single dataset)."""
        if not self.datasets:
            return [self]
        return [
            self.model_copy(update={"name": f"{self.name}_{split}", "dataset": path, "datasets": {}, "split": split})
            for split, path in self.datasets.items()
        ]

    def dataset_path(self) -> Path:
        path = Path(self.dataset)
        return path if path.is_absolute() else (self.path.parent / path).resolve()

    def metric_names(self) -> list[str]:
        names = list(self.metrics)
        if self.judge and "judge" not in names:
            names.append("judge")
        return names

    def variants(self, backend: str | None = None, prompts: list[str] | None = None) -> list[tuple[str, str | None]]:
        """(backend, prompt version) pairs to run; ``backend``/``prompts`` narrow or replace the suite's."""
        backends = [backend] if backend else list(self.backends)
        versions = prompts or self.prompts
        pairs: list[tuple[str, str | None]] = []
        for name in backends:
            if name == LLM_BACKEND:
                pairs.extend((LLM_BACKEND, v) for v in versions)
            else:
                pairs.append((name, None))
        return pairs


def load_suite(path: Path) -> Suite:
    """A suite file, validated; problems name the file and the field."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvalError(f"{path}: cannot read the suite: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise EvalError(f"{path}: not a YAML suite file: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise EvalError(f"{path}: a suite file must be a mapping of fields")
    if "path" in raw or "sha256" in raw or "split" in raw:
        raise EvalError(f"{path}: fields 'path', 'sha256' and 'split' are set by kefu, not by the suite file")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise EvalError(f"{path}: {next(field_errors(exc))}") from None
    return suite.model_copy(update={"path": path.resolve(), "sha256": hashlib.sha256(data).hexdigest()})
