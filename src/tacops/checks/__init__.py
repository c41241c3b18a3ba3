"""Identity checks: pytest-testinfra tests generated from expected fingerprints."""
