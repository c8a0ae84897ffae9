"""Prompt management: role templates, versions, labels, experiments (issue 7). Not built yet."""
