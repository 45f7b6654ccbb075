"""The CPU of extract's own page store and frame build at a million users, without Graph.

    python scripts/benchmark_extract_build.py [--pages 1000] [--page-size 1000] [--wanted 900000]

Makes ``--pages`` pages of ``--page-size`` Graph user records (the attributes a full read
selects; a seeded generator, so every run and every tree gets the same records), adds them to a
``UserPages`` as the full read's listing does (the collector paused, as in the read), then runs
``_Reader.build`` for ``--wanted`` of those ids (800,000 of them with a role). Prints the CPU
seconds (``time.process_time``) of adding the pages and of the build, and a hash of the frame,
so two trees can be compared: run it with ``PYTHONPATH=<tree>:<tree>/plugins`` from each tree's
root, interleaved (A B A B), and compare medians and hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
import uuid
from typing import Any

import pandas as pd

from include.provisioning.gc_pause import collector_paused
from include.provisioning.graph.assignments import UserRoles
from include.provisioning.graph.extract import _Reader
from include.provisioning.graph.user_pages import UserPages


def _page(rng: random.Random, page: int, size: int) -> list[dict[str, Any]]:
    """One page of Graph user records: text, booleans and some nulls, as Graph returns them."""
    return [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "userPrincipalName": f"u{page}.{n}@x.example",
            "accountEnabled": n % 7 != 0,
            "mail": f"u{page}.{n}@x.example" if n % 5 else None,
            "givenName": f"G{n}",
            "surname": f"S{page}",
            "preferredLanguage": "en-US",
            "jobTitle": "Engineer",
            "department": f"D{n % 40}",
            "employeeId": str(page * size + n),
            "displayName": f"G{n} S{page}",
        }
        for n in range(size)
    ]


SELECT = [name for name in _page(random.Random(0), 0, 1)[0] if name != "id"]
"""What a full read selects (besides ``id``) with the default mapping: the records' keys."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--wanted", type=int, default=900_000)
    args = parser.parse_args()
    rng = random.Random(1)
    pages = [_page(rng, page, args.page_size) for page in range(args.pages)]
    ids = [record["id"] for page in pages for record in page]
    wanted = set(rng.sample(ids, min(args.wanted, len(ids))))
    role = UserRoles(["Role"], "direct")
    roles = {user_id: role for user_id in rng.sample(sorted(wanted), len(wanted) * 8 // 9)}
    reader = _Reader(None, service_principal_id="sp", select=SELECT, known={}, also_fetch=(), progress=None)  # type: ignore[arg-type]
    reader.records = UserPages(reader.attributes)
    started = time.process_time()
    with collector_paused():
        for page in pages:
            reader.records.add(page)
    added = time.process_time() - started
    del pages
    started = time.process_time()
    frame, _ = reader.build(wanted, roles, {})
    built = time.process_time() - started
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    print(f"pages added {added:.2f} CPU-s, build {built:.2f} CPU-s", end=", ")
    print(f"{len(frame):,} rows, frame {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
