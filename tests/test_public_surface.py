"""What users import from ``agent`` stays importable and documented."""

import agent


def test_exported_members_exist_and_nothing_private_leaks() -> None:
    for name in agent.__all__:
        assert hasattr(agent, name), name
        assert not name.startswith("_")
    assert {"draft_reply", "check", "Draft", "Verdict", "KefuError"} <= set(agent.__all__)


def test_error_tree_is_rooted_in_kefu_error() -> None:
    for name in agent.__all__:
        obj = getattr(agent, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, agent.KefuError), name
