"""jsforce (Node.js) against the Salesforce emulator's Bulk API 2.0: a second client.

``tests/js/bulk2.js`` runs ``conn.bulk2.loadAndWaitForResults`` (insert from a CSV string,
update from records with a null), ``conn.bulk2.query`` and an insert on an object the org
does not have; this test feeds it a token and checks what jsforce itself parsed. The
sandbox CA is trusted through ``NODE_EXTRA_CA_CERTS``, never by disabling TLS checks.
The npm packages are installed from ``tests/js/package-lock.json`` when missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.sandbox.test_salesforce_bulk_api import HEADER, MEGAN, access_token, http_session, user_row
from tests.sandbox_process import REPO_ROOT, SandboxProcess

JS_DIR = REPO_ROOT / "tests" / "js"


def _ensure_jsforce() -> Path:
    node = shutil.which("node")
    assert node, "node is required for the jsforce contract test"
    if not (JS_DIR / "node_modules" / "jsforce" / "package.json").exists():
        npm = shutil.which("npm")
        assert npm, "npm is required to install tests/js"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300)
    return Path(node)


@pytest.mark.node
def test_jsforce_bulk2_load_update_and_query(sandbox: SandboxProcess) -> None:
    node = _ensure_jsforce()
    token = access_token(sandbox, http_session(sandbox))
    rows = [user_row("js.one@contoso.example", FirstName="Jay, S."), user_row("js.two@contoso.example", LastName="")]
    insert_csv = ",".join(HEADER) + "\n" + "\n".join(",".join(_quote(v) for v in row.values()) for row in rows) + "\n"
    payload = {
        "instanceUrl": sandbox.salesforce_url,
        "accessToken": token,
        "version": sandbox.org["api_version"],
        "insertCsv": insert_csv,
        "updateRecords": [{"Id": MEGAN, "LastName": "Bowen", "FirstName": None}],
        "query": "SELECT Id, Username, FirstName, IsActive FROM User ORDER BY Username",
    }
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": sandbox.ca_bundle}
    env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)
    done = subprocess.run(
        [str(node), "bulk2.js"],
        cwd=JS_DIR,
        input=orjson.dumps(payload),
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    out = orjson.loads(done.stdout)

    insert = out["insert"]
    [ok] = insert["successfulResults"]
    assert (ok["Username"], ok["FirstName"], ok["sf__Created"]) == ("js.one@contoso.example", "Jay, S.", "true")
    assert ok["sf__Id"].startswith("005") and len(ok["sf__Id"]) == 18
    [failed] = insert["failedResults"]
    assert failed["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    assert (failed["sf__Id"], failed["Username"]) == ("", "js.two@contoso.example")
    assert insert["unprocessedRecords"] == []

    [updated] = out["update"]["successfulResults"]
    assert (updated["sf__Id"], updated["sf__Created"], updated["FirstName"]) == (MEGAN, "false", "#N/A")
    assert out["update"]["failedResults"] == []

    by_username = {r["Username"]: r for r in out["query"]}
    assert set(by_username) == {
        "integration@contoso.example.sfdc",
        "js.one@contoso.example",
        "megan.bowen@contoso.example",
    }
    assert by_username["megan.bowen@contoso.example"]["FirstName"] == "", "jsforce's null became #N/A: nulled"
    assert by_username["js.one@contoso.example"] == {
        "Id": ok["sf__Id"],
        "Username": "js.one@contoso.example",
        "FirstName": "Jay, S.",
        "IsActive": "true",
    }

    assert out["unknownObject"] == {
        "name": "INVALIDJOB",
        "errorCode": "INVALIDJOB",
        "message": "Unable to find object: Account",
    }


def _quote(value: str) -> str:
    return f'"{value}"' if "," in value else value
