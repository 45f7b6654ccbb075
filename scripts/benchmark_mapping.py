"""Benchmark the mapping stage: the default table over synthetic USERS frames.

    .venv/bin/python scripts/benchmark_mapping.py [--sizes 100000,1000000] [--table PATH]

Prints, per frame size, the seconds each field's expression takes (in table order, sharing
the converted attribute columns as ``MappingTable.evaluate`` does), the whole
``MappingTable.evaluate`` call (fields + failure bookkeeping + MAPPED frame) and the scoping
evaluation of a two-filter example. The frame looks like what extract produces: pandas
string columns with nulls, a boolean IsSoftDeleted and a list column of app roles, with a
share of messy values (accents, missing surnames, two roles).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.provisioning.mapping import MappingTable
from include.provisioning.scoping import ScopingFilters
from scripts.benchlib import sizes_arg

GIVEN = ["Adele", "Alex", "Zoë", "Łukasz", "José", "Megan", "Björn", "Ana María", "Wei", "Chloé", "Ælfric", "Nora"]
SURNAMES = ["Vance", "Wilber", "Müller", "Nowak", "García", "Bowen", "Øster", "O'Neil", "王", "Dubois", None]
LANGUAGES = ["en-US", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-BR", "en-GB", "sr-Latn-RS", None, "nl-NL"]
DEPARTMENTS = ["Sales", "Marketing", "Engineering", "Support", None]
ROLES = [["Standard User"], ["System Administrator"], ["Chatter Free User"], ["Standard User", "Marketing User"]]


def synthetic_users(n: int, seed: int = 7) -> pd.DataFrame:
    rng = random.Random(seed)
    given = [rng.choice(GIVEN) for _ in range(n)]
    surname = [rng.choice(SURNAMES) for _ in range(n)]
    upn = [f"user{i}.{(s or 'x').lower()}@contoso.example" for i, s in enumerate(surname)]
    nprng = np.random.default_rng(seed)
    role_pick = nprng.choice(len(ROLES), size=n, p=[0.7, 0.1, 0.19, 0.01])
    soft = nprng.random(n) < 0.05
    return pd.DataFrame(
        {
            "id": [f"00000000-0000-0000-0000-{i:012d}" for i in range(n)],
            "userPrincipalName": upn,
            "mail": [u if rng.random() > 0.02 else None for u in upn],
            "givenName": given,
            "surname": surname,
            "mailNickname": [u.split("@")[0] for u in upn],
            "preferredLanguage": [rng.choice(LANGUAGES) for _ in range(n)],
            "jobTitle": [rng.choice(["Account Executive", "Engineer", None, "Directeur, Ventes"]) for _ in range(n)],
            "department": [rng.choice(DEPARTMENTS) for _ in range(n)],
            "employeeId": [str(1000 + i) if rng.random() > 0.1 else None for i in range(n)],
            "accountEnabled": ~soft,
            "appRoleAssignments": [ROLES[k] for k in role_pick],
            "assignedVia": "direct",
            "IsSoftDeleted": soft,
            "scopeReason": [("disabled" if s else None) for s in soft],
        }
    )


SCOPING = ScopingFilters.load(
    [
        {"name": "Sales", "clauses": [{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]},
        {
            "name": "Contoso staff",
            "clauses": [
                {"attribute": "userPrincipalName", "operator": "REGEX MATCH", "value": r".*\@contoso\.example$"},
                {"attribute": "jobTitle", "operator": "IS NOT NULL"},
            ],
        },
    ]
)


def run(table: MappingTable, n: int) -> None:
    build = time.perf_counter()
    users = synthetic_users(n)
    build = time.perf_counter() - build
    cache: dict = {}
    timings: list[tuple[str, float]] = []
    for mapping in table.fields:
        start = time.perf_counter()
        if mapping.expression is not None:
            mapping.expression.evaluate_frame(users, cache)
        timings.append((mapping.target, time.perf_counter() - start))
    start = time.perf_counter()
    result = table.evaluate(users)
    total = time.perf_counter() - start
    start = time.perf_counter()
    in_scope = SCOPING.evaluate(users)
    scoping = time.perf_counter() - start
    print(f"\n{n:,} rows (synthetic frame built in {build:.1f} s)")
    print(f"  {'field':<22}{'seconds':>10}")
    for target, seconds in timings:
        print(f"  {target:<22}{seconds:>10.3f}")
    print(f"  {'sum of fields':<22}{sum(s for _, s in timings):>10.3f}")
    print(
        f"  {'MappingTable.evaluate':<22}{total:>10.3f}   mapped {len(result.mapped):,}, failed {len(result.errors):,}"
    )
    print(f"  {'scoping (2 filters)':<22}{scoping:>10.3f}   in scope {int(in_scope.sum()):,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", "--rows", dest="rows", type=sizes_arg, default="100000,1000000", help="comma-separated row counts"
    )
    parser.add_argument("--table", type=Path, default=None, help="mapping table (default: the repository's)")
    args = parser.parse_args()
    table = MappingTable.load(args.table) if args.table else MappingTable.default()
    print(f"mapping table: {table.name}, {len(table.fields)} fields")
    for n in args.rows:
        run(table, n)


if __name__ == "__main__":
    main()
