"""Operator commands for a deployed wabacast environment (not shipped in the Lambda layer)."""
