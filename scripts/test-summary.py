#!/usr/bin/env python3
"""Add up the JUnit reports that `make test` leaves in .reports/ into one closing line."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main() -> int:
    reports = sorted(Path(sys.argv[1] if len(sys.argv) > 1 else ".reports").glob("*.xml"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in reports:
        root = ET.parse(report).getroot()
        for suite in root.iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"tests: {passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 0 if reports and totals["tests"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
