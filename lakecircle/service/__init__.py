"""The always-on service: the daemon loop, signals, the HTTP server and the metrics.

See ARCHITECTURE.md.
"""
