"""Test helpers shared across test suites (fake servers, builders)."""
