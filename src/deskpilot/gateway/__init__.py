"""LLM gateway: OpenAI-compatible entry to many providers (issue 4). Not built yet."""
