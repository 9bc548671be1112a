"""The gateway client: REST (ProjectX) with its resilience layer."""
