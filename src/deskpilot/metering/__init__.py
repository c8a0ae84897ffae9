"""Usage metering, quotas and cost attribution (issue 3). Not built yet."""
