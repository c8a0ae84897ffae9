"""Shared plumbing: settings, database, Redis, errors, tenant context, logging."""
