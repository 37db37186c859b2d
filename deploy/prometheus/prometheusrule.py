"""Write deploy/kubernetes/base/prometheusrule.yaml from deploy/prometheus/alerts.yml.

The Prometheus operator takes alerting rules as a PrometheusRule object whose
``spec.groups`` is exactly a rule file's ``groups``. This copies alerts.yml's groups
into one, text for text, so the two cannot drift apart; the test suite runs it and
fails when the committed file differs. Run it after editing alerts.yml:

    python deploy/prometheus/prometheusrule.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALERTS = HERE / "alerts.yml"
TARGET = HERE.parent / "kubernetes" / "base" / "prometheusrule.yaml"

HEADER = """\
# Generated from deploy/prometheus/alerts.yml by deploy/prometheus/prometheusrule.py:
# edit alerts.yml and run that script, never this file.
# Your Prometheus may select rules by a label (kube-prometheus-stack: release=<name>):
# add it in your overlay.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: lakecircle
spec:
"""


def render(alerts_text: str) -> str:
    """The PrometheusRule text for a rule file's text: its ``groups:`` block, indented under ``spec``."""
    lines = alerts_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("groups:")), None)
    if start is None:
        raise ValueError("the rule file has no top-level groups: key")
    body = [("  " + line) if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main() -> int:
    TARGET.write_text(render(ALERTS.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
