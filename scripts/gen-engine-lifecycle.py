#!/usr/bin/env python3
"""Regenerates data/engine-lifecycle.json, the engine lifecycle catalogue
dbaudit compares cluster engine versions with (rules db.engine.*), from the
answer of RDS `DescribeDBMajorEngineVersions`:

    aws rds describe-db-major-engine-versions --engine aurora-postgresql \
        --output json > answer.json
    scripts/gen-engine-lifecycle.py answer.json [more answers...] \
        > data/engine-lifecycle.json

Each SupportedEngineLifecycles entry gives the start and end of standard
support (`open-source-rds-standard-support`) and of paid RDS Extended
Support (`open-source-rds-extended-support`) for one major version. The
output is sorted and stable, so a regenerated catalogue diffs cleanly.
tests/engine_lifecycle.rs runs this script on
tests/fixtures/describe-db-major-engine-versions.json (an answer in the API's
shape, its dates those of AWS's "Release calendar for Aurora PostgreSQL";
the emulator has no such API) and checks that it reproduces the shipped
catalogue, so the two cannot drift.
"""
import json
import sys

STANDARD = "open-source-rds-standard-support"
EXTENDED = "open-source-rds-extended-support"


def day(value):
    # The CLI prints ISO 8601 timestamps; the catalogue keeps the date.
    return str(value)[:10]


def version_key(v):
    return [int(p) if p.isdigit() else p for p in v.split(".")]


def main(paths):
    engines = {}
    for path in paths:
        with open(path) as f:
            answer = json.load(f)
        for major in answer.get("DBMajorEngineVersions", []):
            entry = {}
            for life in major.get("SupportedEngineLifecycles", []):
                name = life.get("LifecycleSupportName")
                if name == STANDARD:
                    entry["standard_support_ends"] = day(life["LifecycleSupportEndDate"])
                elif name == EXTENDED:
                    entry["extended_support_ends"] = day(life["LifecycleSupportEndDate"])
            if "standard_support_ends" not in entry:
                continue
            engine = engines.setdefault(major["Engine"], {})
            engine[major["MajorEngineVersion"]] = entry
    out = {
        "source": "RDS DescribeDBMajorEngineVersions (scripts/gen-engine-lifecycle.py)",
        "engines": {
            e: {v: engines[e][v] for v in sorted(engines[e], key=version_key)}
            for e in sorted(engines)
        },
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
