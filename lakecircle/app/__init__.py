"""Entry points: the command line, the wiring of settings to parts, export and the demo.

See ARCHITECTURE.md.
"""
