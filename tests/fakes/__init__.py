"""Fakes for tests: an OpenAI-compatible server on loopback and the ``fake_llm`` fixture."""
