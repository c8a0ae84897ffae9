"""Tenant-scoped ITSM agents with durable runs (issue 8). Not built yet."""
