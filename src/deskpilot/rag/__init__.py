"""Tenant knowledge bases: ingestion, embeddings, hybrid retrieval (issue 6). Not built yet."""
