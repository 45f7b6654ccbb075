"""E-mail through Airflow's SMTP provider, received by a real SMTP server (aiosmtpd).

The cycle report goes out with ``SmtpHook`` (HTML body, CSV attachment); task failures with the
``SmtpNotifier`` from ``task_failure_notifier``, run as the failure callback of a real
``dag.test()`` run whose tasks raise.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import logging
import re
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from entra_provisioning.notify import (
    CYCLE_HEADER,
    NOTIFICATION_VARIABLE,
    airflow_run_url,
    airflow_task_url,
    recipients,
    send_cycle_report,
    send_report_files,
)

from include.provisioning.model import (
    Action,
    CycleStatus,
    CycleSummary,
    LogEntry,
    Mode,
    PlannedChange,
    QuarantinedUser,
    Status,
)
from include.provisioning.report import CycleReport, cycle_report
from tests.smtp_server import DEFAULT_FROM, SmtpServer, attachments, html_body, smtp_server_fixture  # noqa: F401

T0 = dt.datetime(2026, 11, 30, 7, 20, tzinfo=dt.UTC)
RUN_ID = "scheduled__2026-11-30T07:20:00+00:00"
ADMINS = "it-admins@contoso.example"
REPO = Path(__file__).resolve().parents[2]


def report(**kwargs: object) -> CycleReport:
    summary = CycleSummary("20261130T072000Z-cd34", Mode.INCREMENTAL, CycleStatus.SUCCEEDED, T0, T0, escrowed=2)
    summary.quarantined, summary.held_back = 3, 1
    entries = [
        LogEntry(
            "c",
            Action.CREATE,
            Status.FAILURE,
            "e1",
            "<script>x</script>@x",
            None,
            {},
            "LICENSE_LIMIT_EXCEEDED",
            "no free licence",
            T0,
            display_name="Adele <b>Vance</b>",
        ),
        LogEntry(
            "c",
            Action.UPDATE,
            Status.FAILURE,
            "e2",
            "dup@contoso.example",
            "005B",
            {},
            "DUPLICATE_USERNAME",
            "Duplicate Username",
            T0,
        ),
    ]
    mail = "mail: missing (expect_column_values_to_not_be_null)"
    quarantined = [QuarantinedUser(f"q{n}", f"q{n}@contoso.example", [mail]) for n in range(3)]
    quarantined[0].display_name = "Zoë Müller"
    held = [PlannedChange("h1", "=HYPERLINK(1)@x", Action.DISABLE, "005H", {}, display_name="=Grady Archie")]
    return cycle_report(summary, entries, quarantined, held, **kwargs)  # type: ignore[arg-type]


# -- links -----------------------------------------------------------------------------------


def test_run_and_task_urls_follow_the_airflow_3_ui_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert airflow_run_url("entra sync", RUN_ID) == (
        "http://localhost:8080/dags/entra%20sync/runs/scheduled__2026-11-30T07%3A20%3A00%2B00%3A00"
    )
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.contoso.example/base/")
    assert airflow_task_url("d", "r/1", "load", map_index=3, try_number=2) == (
        "https://airflow.contoso.example/base/dags/d/runs/r%2F1/tasks/load/mapped/3?try_number=2"
    )
    assert airflow_task_url("d", "r", "t", map_index=-1) == "https://airflow.contoso.example/base/dags/d/runs/r/tasks/t"


def test_recipients_come_from_a_string_or_a_list() -> None:
    assert recipients(" a@x, b@y;c@z ;") == ["a@x", "b@y", "c@z"]
    assert recipients(["a@x", " b@y "]) == ["a@x", "b@y"]
    assert recipients(None) == recipients("") == recipients(" , ") == []


# -- the cycle report ------------------------------------------------------------------------


def test_the_cycle_report_arrives_with_its_content_link_and_csv(smtp_server: SmtpServer) -> None:
    the_report = report()
    url = airflow_run_url("entra_salesforce_provisioning", RUN_ID)
    send_cycle_report(the_report, to=f"{ADMINS}; security@contoso.example", run_url=url)

    (received,) = smtp_server.wait_for(1)
    message = received.message
    assert received.mail_from == DEFAULT_FROM and message["From"] == DEFAULT_FROM
    assert received.rcpt_tos == [ADMINS, "security@contoso.example"]
    assert message["Subject"] == (
        "Entra to Salesforce provisioning, cycle 20261130T072000Z-cd34: 2 failed, 3 quarantined, 1 held back"
    )
    assert message[CYCLE_HEADER] == "20261130T072000Z-cd34"

    body = html_body(message)
    assert f'href="{html.escape(url)}"' in body  # the run link, rendered at send time
    assert "<script>x" not in body and "&lt;script&gt;x&lt;/script&gt;@x" in body
    assert "<b>Vance" not in body and "Adele &lt;b&gt;Vance&lt;/b&gt; (&lt;script&gt;x&lt;/script&gt;@x)" in body
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    # Each user as "Display name (UPN)"; a user without a name by the UPN alone.
    for who in (
        "Adele <b>Vance</b> (<script>x</script>@x)",
        "Zoë Müller (q0@contoso.example)",
        "=Grady Archie (=HYPERLINK(1)@x)",
    ):
        assert who in text
    assert "dup@contoso.example" in text and "(dup@contoso.example)" not in text
    assert "Needs attention 2 failed 3 quarantined 1 held back" in text
    for title in (
        "No free Salesforce licence",
        "The Username is already taken",
        "mail: missing",
        "Deactivations held back by the accidental-deletion threshold",
    ):
        assert title in text
    assert "What to do: Fill in mail for these users in Entra ID." in text
    assert "Why the rule exists: Email is required on create" in text

    files = attachments(message)
    assert list(files) == ["provisioning-20261130T072000Z-cd34.csv"]
    assert files["provisioning-20261130T072000Z-cd34.csv"] == the_report.csv_bytes
    rows = list(csv.reader(io.StringIO(files["provisioning-20261130T072000Z-cd34.csv"].decode("utf-8-sig"))))
    assert [(row[3], row[9]) for row in rows[1:]] == [
        ("e1", "LICENSE_LIMIT_EXCEEDED"),
        ("e2", "DUPLICATE_USERNAME"),
        ("q0", "expect_column_values_to_not_be_null"),
        ("q1", "expect_column_values_to_not_be_null"),
        ("q2", "expect_column_values_to_not_be_null"),
        ("h1", "DELETION_THRESHOLD"),
    ]
    assert rows[0][4:6] == ["user_principal_name", "display_name"]
    assert [row[5] for row in rows[1:]] == ["Adele <b>Vance</b>", "", "Zoë Müller", "", "", "'=Grady Archie"]
    assert rows[6][4] == "'=HYPERLINK(1)@x"  # neutralised for spreadsheets


def test_a_large_report_arrives_zipped(smtp_server: SmtpServer) -> None:
    the_report = report(zip_above=100)
    send_cycle_report(the_report, to=ADMINS)
    (received,) = smtp_server.wait_for(1)
    files = attachments(received.message)
    assert list(files) == ["provisioning-20261130T072000Z-cd34.zip"]
    with zipfile.ZipFile(io.BytesIO(files["provisioning-20261130T072000Z-cd34.zip"])) as archive:
        assert archive.read("provisioning-20261130T072000Z-cd34.csv") == the_report.csv_bytes


def test_no_e_mail_when_all_is_well(smtp_server: SmtpServer) -> None:
    clean = cycle_report(CycleSummary("c-ok", Mode.INCREMENTAL, CycleStatus.SUCCEEDED, T0, T0, unchanged=5))
    assert not clean.needs_attention
    send_cycle_report(clean, to=ADMINS)
    with pytest.raises(TimeoutError):
        smtp_server.wait_for(1, timeout=0.3)


def test_a_failed_cycle_without_records_is_mailed_without_attachment(smtp_server: SmtpServer) -> None:
    reason = "GraphAuthError: invalid_client for tenant Zürich → ünïcode"
    failed = CycleSummary("c-bad", Mode.FULL, CycleStatus.FAILED, T0, T0, reason=reason)
    send_cycle_report(cycle_report(failed), to=ADMINS)
    (received,) = smtp_server.wait_for(1)
    assert received.message["Subject"] == f"Entra to Salesforce provisioning, cycle c-bad failed: {reason}"
    assert attachments(received.message) == {}
    assert f"Failed:</strong> {reason}" in html_body(received.message)


def test_report_files_from_the_run_path_are_sent_and_the_text_is_logged(
    smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    the_report = report()
    with caplog.at_level(logging.INFO, logger="entra_provisioning.notify"):
        send_report_files(
            to=[ADMINS],
            subject=the_report.subject,
            html=the_report.html,
            text=the_report.text,
            attachment_name=the_report.attachment_name,
            attachment=the_report.attachment_bytes,
        )
    (received,) = smtp_server.wait_for(1)
    assert attachments(received.message) == {the_report.attachment_name: the_report.attachment_bytes}
    assert "No free Salesforce licence [LICENSE_LIMIT_EXCEEDED]" in caplog.text
    with pytest.raises(ValueError, match="no recipient"):
        send_report_files(to=" ; ", subject="s", html="<p>x</p>")


# -- task failures ---------------------------------------------------------------------------


FAILING_DAG = """
from airflow.sdk import DAG, task
from entra_provisioning.notify import task_failure_notifier

with DAG(
    "{dag_id}",
    schedule=None,
    catchup=False,
    default_args={{"retries": 0, "on_failure_callback": task_failure_notifier()}},
) as dag:

    @task
    def extract():
        raise ValueError('Graph said <script>alert("x")</script>')

    @task
    def load():
        raise RuntimeError("Bulk job failed")

    @task(on_failure_callback=task_failure_notifier(to="{{{{ var.value.get('provisioning_unset_variable', '') }}}}"))
    def quiet():
        raise RuntimeError("nobody is told")

    extract()
    load()
    quiet()
"""


def test_a_failing_task_mails_the_notification_address(
    airflow_db: Path,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two tasks share one notifier through default_args (each mail names its own task); a
    third's notifier reads an unset Variable and stays silent without breaking the callback.

    ``dag.test()`` runs DAGs of a bundle only, so the DAG is a file in a DAGs folder of its own."""
    monkeypatch.setenv(f"AIRFLOW_VAR_{NOTIFICATION_VARIABLE.upper()}", f"{ADMINS}, oncall@contoso.example")
    dag_id = f"notify_test_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / f"{dag_id}.py").write_text(FAILING_DAG.format(dag_id=dag_id), encoding="utf-8")
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="dags-folder")
    assert bag.import_errors == {}
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)  # serialized, as dag.test() needs
    run = bag.dags[dag_id].test(logical_date=T0)
    assert str(run.state) == "failed"

    received = sorted(smtp_server.wait_for(2, timeout=30), key=lambda r: str(r.message["Subject"]))
    with pytest.raises(TimeoutError):
        smtp_server.wait_for(3, timeout=0.5)  # "quiet" sent nothing, and said why in its log
    assert "No failure e-mail: no recipient (is the Variable provisioning_notification_email" in capsys.readouterr().out
    run_id = run.run_id
    subjects = [str(r.message["Subject"]) for r in received]
    assert subjects == [
        f"[Airflow] {dag_id}: task extract failed (run {run_id})",
        f"[Airflow] {dag_id}: task load failed (run {run_id})",
    ]
    assert all(r.rcpt_tos == [ADMINS, "oncall@contoso.example"] for r in received)
    body = html_body(received[0].message)
    assert "<script>" not in body
    assert "ValueError: Graph said &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
    assert "Traceback (most recent call last)" in body
    url = airflow_task_url(dag_id, run_id, "extract", try_number=1)
    assert f'href="{html.escape(url)}"' in body
    assert "/tasks/extract?try_number=1" in url
    assert "RuntimeError: Bulk job failed" in html_body(received[1].message)


# -- the catcher for the demo and airflow standalone -----------------------------------------


def test_the_catcher_script_gives_airflow_its_settings_and_keeps_each_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from include.sandbox.core.envfile import read_env_file
    from scripts import show_mail

    env_file, folder = tmp_path / "smtp.env", tmp_path / "mail"
    command = [sys.executable, str(REPO / "scripts" / "smtp_catcher.py"), "--dir", str(folder)]
    command += ["--env-file", str(env_file), "--to", "ops@contoso.example"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while not env_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the catcher did not start"
            time.sleep(0.05)
        settings = read_env_file(env_file)
        assert settings["AIRFLOW_VAR_PROVISIONING_NOTIFICATION_EMAIL"] == "ops@contoso.example"
        assert settings["SMTP_CATCHER_DIR"] == str(folder.resolve())
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
        hook = SmtpHook()
        hook.smtp_connection = hook.get_connection("smtp_default")
        assert (hook.host, hook.use_ssl, hook.smtp_starttls) == ("127.0.0.1", False, False)  # the JSON form

        the_report = report()
        send_cycle_report(the_report, to=settings["AIRFLOW_VAR_PROVISIONING_NOTIFICATION_EMAIL"])
        while not list(folder.glob("*.eml")):
            assert time.monotonic() < deadline, "no .eml file"
            time.sleep(0.05)
        (eml,) = folder.glob("*.eml")
        assert eml.name.startswith("0001-") and "Entra-to-Salesforce-provisioning" in eml.name
        assert show_mail.main([str(folder), "--csv", "2"]) == 0
        shown = capsys.readouterr().out
        assert f"Subject:  {the_report.subject}" in shown
        assert f"Attached: {the_report.csv_filename} (" in shown and "6 rows)" in shown
        assert "What to do: Fill in mail for these users in Entra ID." in shown
        assert "-- first 2 rows of provisioning-20261130T072000Z-cd34.csv" in shown
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    lines = out.splitlines()
    assert lines[0].startswith("SMTP catcher listening on 127.0.0.1:")
    assert any(line.endswith(str(eml)) and the_report.subject in line for line in lines)
    assert lines[-1] == "SMTP catcher stopped"
