"""Write k8s/components/monitoring/mysqlsts.rules.yaml from prometheusrule.yaml's spec.

.venv/bin/python tests/manifests/sync_rules.py
"""

from __future__ import annotations

from manifest_support import PLAIN_RULES, plain_rules_text

if __name__ == "__main__":
    PLAIN_RULES.write_text(plain_rules_text())
    print(f"wrote {PLAIN_RULES}")
