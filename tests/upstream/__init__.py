"""A loopback LLM provider for tests and benchmarks: real HTTP/1.1, scripted faults.

``server`` is the entry point (``Upstream`` and the behaviours); ``openai_api`` and
``anthropic_api`` build the provider-shaped payloads without doing any I/O.
"""
