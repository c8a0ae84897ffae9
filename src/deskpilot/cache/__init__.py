"""Tenant-scoped response, embedding and semantic caches (issue 5). Not built yet."""
