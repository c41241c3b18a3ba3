"""Pulumi programs for the two target platforms.

This package imports only the description (``tacops.foundation.description``) from the
rest of tacops, so the programs run wherever the Pulumi CLI and the provider SDKs are.
"""
