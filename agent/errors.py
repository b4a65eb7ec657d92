"""Every error kefu raises on purpose.

    KefuError                      base: one line for the CLI, a code and a message for the API
    ├── ConfigError                settings or environment that cannot work (bad URL, missing key)
    ├── CorpusError                a corpus, shop, rules or emergency file that fails to load or validate
    ├── PromptError                a prompt file with an unknown field or a missing variable
    ├── InputError                 a customer message or request kefu will not draft from
    │   ├── EmptyMessageError      nothing left after sanitising
    │   └── MessageTooLongError    over the hard length limit
    ├── UnknownShopError           --shop names no shop profile
    ├── NotFoundError              a script, run or record that does not exist
    ├── RetrievalError             the index or the embedder failed
    ├── BackendError               the LLM backend failed after its retries
    ├── EvalError                  an eval suite, dataset or run that cannot be used
    └── StoreError                 the SQLite store failed
        └── AuthError              a missing, unknown or revoked API key

Each class carries a stable ``code`` used by the JSON outputs of the CLI and the API.
Messages name the thing that is wrong and, where there is one, the fix.
"""

from __future__ import annotations


class KefuError(Exception):
    """Base of all errors kefu raises on purpose."""

    code = "kefu_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(KefuError):
    code = "config_error"


class CorpusError(KefuError):
    """A corpus problem; ``problems`` holds one line per finding when there are several."""

    code = "corpus_error"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class PromptError(KefuError):
    code = "prompt_error"


class InputError(KefuError):
    code = "invalid_input"


class EmptyMessageError(InputError):
    code = "empty_message"


class MessageTooLongError(InputError):
    code = "message_too_long"


class UnknownShopError(KefuError):
    code = "unknown_shop"


class NotFoundError(KefuError):
    code = "not_found"


class RetrievalError(KefuError):
    code = "retrieval_error"


class BackendError(KefuError):
    code = "backend_error"


class EvalError(KefuError):
    code = "eval_error"


class StoreError(KefuError):
    code = "store_error"


class AuthError(StoreError):
    code = "unauthorized"
