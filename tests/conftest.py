"""Shared test configuration. Warnings are errors (pyproject), slow tiers have markers."""
