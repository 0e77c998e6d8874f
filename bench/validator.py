"""Exclusivity validator time for a group over 10,000 combinations (4 factors of 10 values).

    .venv/bin/python bench/validator.py [--repeats 5]

Ten workflows each take one value of the first factor, so the group is exclusive and exhaustive.
"""

from __future__ import annotations

import argparse
import statistics
import time

from server.core.exclusivity import check_group

FACTORS = ["deal.stage", "deal.custom.a", "deal.custom.b", "deal.custom.c"]
DOMAINS = {f: [f"v{n}" for n in range(10)] for f in FACTORS}


def documents() -> list[dict]:
    return [
        {
            "id": f"step-{n}",
            "entity": "deal",
            "group": "g",
            "exclusive": True,
            "exhaustive": True,
            "condition": f"record.stage == 'v{n}' && record.custom.a != 'x' "
            "&& record.custom.b != 'x' && record.custom.c != 'x'",
        }
        for n in range(10)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        report = check_group("g", documents(), DOMAINS)
        times.append(time.perf_counter() - started)
        assert report.ok and report.combinations == 10_000, report.summary()
    print(f"10 workflows x 10,000 combinations: median {statistics.median(times) * 1000:,.0f} ms "
          f"({statistics.median(times) / 100_000 * 1e6:.1f} µs per condition evaluation)")


if __name__ == "__main__":
    main()
