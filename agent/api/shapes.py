"""The JSON shapes kefu prints and serves, shared by the CLI (``--json``, ``--jsonl``) and the API.

    verdict_json(verdict)        {"ok", "is_refusal", "violations", "fixed"}
    error_json(code, message)    {"error": {"code", "message"}}
    error_line(id, code, message) {"id", "error": {"code", "message"}}  (one line of --jsonl output)

A draft's shape is :meth:`agent.types.Draft.public`. This module imports nothing heavy, so the
CLI can use it without loading the web framework.
"""

from __future__ import annotations

from typing import Any

from agent.errors import KefuError
from agent.types import Verdict


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The guardrail's verdict as JSON."""
    return {
        "ok": verdict.ok,
        "is_refusal": verdict.is_refusal,
        "violations": [f.model_dump() for f in verdict.findings],
        "fixed": verdict.fixed,
    }


def error_json(code: str, message: str) -> dict[str, Any]:
    """An error as JSON: a stable ``code`` (see agent.errors) and a one-line ``message``."""
    return {"error": {"code": code, "message": message}}


def error_line(line_id: object, code: str, message: str) -> dict[str, Any]:
    """One JSON-lines output record for an input line that failed; ``line_id`` echoes the input's id."""
    return {"id": line_id, **error_json(code, message)}


def kefu_error_json(exc: KefuError) -> dict[str, Any]:
    """A :class:`KefuError` as :func:`error_json`."""
    return error_json(exc.code, exc.message)
