"""The pure core: definitions, models, validation, plans, drift and rendering.

No I/O, no clock, no async runtime, no logging and no metrics (an import-linter contract
in pyproject.toml holds the whole package to it). See ARCHITECTURE.md.
"""
