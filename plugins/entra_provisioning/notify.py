"""E-mail from the provisioning DAG, through Airflow's SMTP provider.

- :func:`send_cycle_report` / :func:`send_report_files`: the cycle report
  (``include/provisioning/report.py``) to the notification address, the CSV (zipped when large)
  attached, with ``SmtpHook.send_email_smtp``;
- :func:`task_failure_notifier`: an ``SmtpNotifier`` for every task's ``on_failure_callback``,
  addressed to the Variable ``provisioning_notification_email``;
- :func:`airflow_run_url` / :func:`airflow_task_url`: links into the Airflow 3 UI, built from
  ``[api] base_url``.

Sources: ``airflow/providers/smtp/hooks/smtp.py`` and ``notifications/smtp.py`` (provider 3.2.0),
``airflow/sdk/bases/notifier.py``, ``RuntimeTaskInstance.log_url`` (``sdk/execution_time/
task_runner.py``, the UI route ``/dags/{dag}/runs/{run}/tasks/{task}``).

Connection ``smtp_default``: host, port, optional login/password, extras ``from_email`` (the
sender), ``disable_ssl``, ``disable_tls``, ``timeout``, ``retry_limit``. Give it as JSON
(``AIRFLOW_CONN_SMTP_DEFAULT='{"conn_type": "smtp", ...}'``): in the URI form any value of
``disable_tls`` reads as true (docs/decisions.md). ``scripts/smtp_catcher.py`` writes one for a
local catcher.

What the provider's ``send_email_smtp`` sends is ``multipart/mixed``: one ``text/html`` part and
the attachments; it has no plain-text alternative, so the report's text body goes to the task log.
"""

from __future__ import annotations

import copy
import logging
import re
import tempfile
import traceback
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.providers.smtp.notifications.smtp import SmtpNotifier

if TYPE_CHECKING:
    from include.provisioning.report import CycleReport

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
NOTIFICATION_VARIABLE = "provisioning_notification_email"
RECIPIENT_TEMPLATE = "{{ var.value.get('" + NOTIFICATION_VARIABLE + "', '') }}"
"""Rendered when the callback runs, so the address is read then (not at DAG parse time) and a
missing Variable renders as "" instead of raising (``VariableAccessor.get``)."""
DEFAULT_UI_URL = "http://localhost:8080"
"""What Airflow itself falls back to when ``[api] base_url`` is not set."""
CYCLE_HEADER = "X-Entra-Provisioning-Cycle"
"""Names the cycle in every report e-mail, for mail rules and for finding one report."""
TRACEBACK_LINES = 40

_ADDRESS_SEPARATORS = re.compile(r"[,;]")
_LINE_BREAKS = re.compile(r"[\r\n\t\u2028\u2029\x85\x00-\x1f\x7f]+")


# -- links into the UI -----------------------------------------------------------------------


def _ui_base() -> str:
    from airflow.sdk import conf

    base = conf.get("api", "base_url", fallback="") or DEFAULT_UI_URL
    return base.rstrip("/")


def airflow_run_url(dag_id: str, run_id: str) -> str:
    """``<[api] base_url>/dags/<dag_id>/runs/<run_id>``, each id URL-quoted (run ids hold ``:``
    and ``+``), e.g. ``http://localhost:8080/dags/entra_sync/runs/manual__2026-11-30T07%3A31%3A00%2B00%3A00``."""
    return f"{_ui_base()}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def airflow_task_url(
    dag_id: str, run_id: str, task_id: str, *, map_index: int | None = None, try_number: int | None = None
) -> str:
    """The task instance's page (its log) in the Airflow 3 UI: the run's URL plus
    ``/tasks/<task_id>[/mapped/<map_index>][?try_number=<n>]``, as ``RuntimeTaskInstance.log_url``
    builds it (with every id quoted)."""
    url = f"{airflow_run_url(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    if try_number:
        url += f"?try_number={try_number}"
    return url


# -- the cycle report ------------------------------------------------------------------------


def recipients(to: str | Iterable[str] | None) -> list[str]:
    """Addresses from a string ("a@x, b@y; c@z", as a Variable holds them) or a list; blanks dropped."""
    if to is None:
        return []
    items = [to] if isinstance(to, str) else list(to)
    return [part.strip() for item in items for part in _ADDRESS_SEPARATORS.split(str(item)) if part.strip()]


def _one_line(value: object) -> str:
    return _LINE_BREAKS.sub(" ", str(value)).strip()


def send_report_files(
    *,
    to: str | list[str],
    subject: str,
    html: str,
    text: str | None = None,
    attachment_name: str | None = None,
    attachment: bytes | None = None,
    cycle_id: str | None = None,
    smtp_conn_id: str = SMTP_CONN_ID,
    from_email: str | None = None,
) -> None:
    """Send one report e-mail: ``html`` as the body, ``attachment`` as a file named
    ``attachment_name``; for a report kept as files between tasks (``tasks.commit_cycle`` writes
    them, ``tasks.notify`` sends them).

    ``text`` (the plain-text body) is written to the task log, since ``send_email_smtp`` mails one
    HTML part only. ``from_email`` defaults to the connection's ``from_email`` extra.

    Raises ``ValueError`` without a recipient; the hook's errors as they are (``AirflowException``
    when the connection is missing or has no sender, ``smtplib``/``OSError`` when the server
    refuses or is unreachable) so the task fails and Airflow retries it.
    """
    addresses = recipients(to)
    if not addresses:
        raise ValueError("no recipient: pass an address (the Variable provisioning_notification_email)")
    if text:
        log.info("report e-mail %r to %s:\n%s", subject, ", ".join(addresses), text)
    headers = {CYCLE_HEADER: re.sub(r"[^A-Za-z0-9._:+-]", "_", cycle_id)} if cycle_id else None
    with tempfile.TemporaryDirectory(prefix="provisioning-mail-") as folder:
        files = None
        if attachment is not None and attachment_name:
            # send_email_smtp attaches files by path and names them after the file.
            path = Path(folder) / Path(attachment_name).name
            path.write_bytes(attachment)
            files = [str(path)]
        with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
            hook.send_email_smtp(
                to=addresses,
                subject=_one_line(subject),
                html_content=html,
                from_email=from_email,
                files=files,
                mime_subtype="mixed",
                mime_charset="utf-8",
                custom_headers=headers,
            )
    log.info("sent %r to %s", subject, ", ".join(addresses))


def send_cycle_report(
    report: CycleReport,
    *,
    to: str | list[str],
    run_url: str | None = None,
    smtp_conn_id: str = SMTP_CONN_ID,
    from_email: str | None = None,
) -> None:
    """E-mail ``report`` (from ``include.provisioning.report.cycle_report``) to ``to``, its CSV
    attached; with ``run_url`` the bodies are rendered again to link to the run.

    Sends nothing (and logs why) when ``report.needs_attention`` is false: no e-mail when all is
    well. Errors as :func:`send_report_files`."""
    if not report.needs_attention:
        log.info("cycle %s needs no attention: no e-mail", report.summary.cycle_id)
        return
    if run_url is not None and run_url != report.run_url:
        report = report.with_run_url(run_url)
    send_report_files(
        to=to,
        subject=report.subject,
        html=report.html,
        text=report.text,
        attachment_name=report.attachment_name if report.rows else None,
        attachment=report.attachment_bytes if report.rows else None,
        cycle_id=report.summary.cycle_id,
        smtp_conn_id=smtp_conn_id,
        from_email=from_email,
    )


# -- task failures ---------------------------------------------------------------------------

_FAILURE_HTML = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;color:#101828">
<p style="font-size:12px;color:#475467">ENTRA ID &rarr; SALESFORCE PROVISIONING</p>
<h2 style="margin:0 0 8px;font-size:18px;color:#b42318">{{ what }} failed</h2>
<table cellpadding="4" cellspacing="0">
<tr><td style="color:#475467">DAG</td><td>{{ dag_id }}</td></tr>
{% if task %}<tr><td style="color:#475467">Task</td><td>{{ task }}</td></tr>{% endif %}
<tr><td style="color:#475467">Run</td><td>{{ run_id }}</td></tr>
{% if attempt %}<tr><td style="color:#475467">Try</td><td>{{ attempt }}</td></tr>{% endif %}
</table>
<p><a href="{{ url }}" style="display:inline-block;padding:8px 14px;background:#175cd3;color:#fff;\
text-decoration:none;border-radius:4px">{{ link }}</a><br>
<span style="font-size:12px;color:#475467">{{ url }}</span></p>
<h3 style="margin:16px 0 4px;font-size:15px">Error</h3>
<p style="margin:0"><strong>{{ error }}</strong></p>
{% if trace %}<pre style="font-size:12px;background:#f9fafb;border:1px solid #e4e7ec;padding:8px;\
white-space:pre-wrap">{{ trace }}</pre>{% endif %}
<p style="font-size:12px;color:#667085">A stage task can be cleared and re-run: the cycle converges. The cycle
report, when the run gets that far, is mailed separately.</p>
</body></html>
"""


@cache
def _failure_template() -> Any:
    # Airflow's own template environment does not autoescape, and an exception message may carry
    # directory data (a display name in a Salesforce error): render with an escaping one.
    import jinja2

    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(_FAILURE_HTML)


def _error_text(error: object) -> tuple[str, str]:
    """(one line naming the error, the traceback's last lines) of the context's ``exception``."""
    if error is None:
        return "no exception was passed to the callback (see the task log)", ""
    if not isinstance(error, BaseException):  # the supervisor may pass a message
        return _one_line(error)[:2000], ""
    name = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    lines = "".join(traceback.format_exception(error)).splitlines()
    return _one_line(name)[:2000], "\n".join(lines[-TRACEBACK_LINES:])


def attempt_text(try_number: int | None, max_tries: object, error: object) -> str:
    """The e-mail's "Try" line, honest about retries: ``"1 (not retried: configuration problem)"``
    for a task that failed at once (``AirflowFailException``: ``tasks.engine_errors`` raises it for
    a configuration error or a lost writer lease; Airflow then skips the retries left), ``"2 of 4
    (Airflow retries it)"`` while tries are left, ``"4 of 4 (the last)"``; "" without a try number."""
    if not try_number:
        return ""
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    from include.provisioning.errors import LeaseLostError, is_configuration_error

    if isinstance(error, AirflowFailException):
        cause = error.__cause__
        if cause is not None and (isinstance(cause, AirflowNotFoundException) or is_configuration_error(cause)):
            why = "configuration problem"
        elif isinstance(cause, LeaseLostError):
            why = "the run lost the writer lease"
        else:  # the task's own check (an unknown param, a run without a data interval)
            why = "retrying cannot help"
        return f"{try_number} (not retried: {why})"
    if not isinstance(max_tries, int):
        return str(try_number)
    total = max_tries + 1
    return f"{try_number} of {total} " + ("(the last)" if try_number >= total else "(Airflow retries it)")


def failure_message(context: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, HTML body) for a failed task (or DAG run) from its Airflow context: DAG, task,
    run, try, the exception with its traceback's tail, and a link to the task's log."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", "?"))
    run_id = str(context.get("run_id") or getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?"))
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", None)
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    task = None
    if task_id:
        task = f"{task_id}[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else str(task_id)
        url = airflow_task_url(dag_id, run_id, task_id, map_index=map_index, try_number=try_number)
    else:
        url = airflow_run_url(dag_id, run_id)
    failure = context.get("exception") or context.get("reason")
    attempt = attempt_text(try_number, max_tries, failure)
    error, trace = _error_text(failure)
    what = f"Task {task}" if task else "DAG run"
    subject = _one_line(f"[Airflow] {dag_id}: {what[0].lower() + what[1:]} failed (run {run_id})")[:250]
    html = _failure_template().render(
        subject=subject,
        what=what,
        dag_id=dag_id,
        task=task,
        run_id=run_id,
        attempt=attempt,
        url=url,
        link="Open the task's log in Airflow" if task else "Open the run in Airflow",
        error=error,
        trace=trace,
    )
    return subject, html


class ProvisioningFailureNotifier(SmtpNotifier):
    """``SmtpNotifier`` whose subject and body describe the failure (:func:`failure_message`).

    ``to`` stays a template field, rendered with the task's context (so ``{{ var.value... }}``
    reads the Variable when the callback runs). Differences from the provider's notifier:

    - no recipient (the Variable is missing or empty) → a warning in the task log, no e-mail and
      no exception (an exception would only be logged by the callback runner as a failed callback);
    - each call renders a copy: ``BaseNotifier`` renders template fields in place, which would
      freeze the first task's values into a notifier shared through ``default_args``.
    """

    template_fields = ("to", "from_email", "cc", "bcc", "smtp_conn_id")

    def __call__(self, *args: Any) -> None:
        return super(ProvisioningFailureNotifier, copy.copy(self)).__call__(*args)

    def notify(self, context: Any) -> None:
        addresses = recipients(self.to)
        if not addresses:
            self.log.warning(
                "No failure e-mail: no recipient (is the Variable %s, the notification address, set?)",
                NOTIFICATION_VARIABLE,
            )
            return
        subject, html = failure_message(context)
        with self.hook as hook:
            hook.send_email_smtp(
                to=addresses,
                subject=subject,
                html_content=html,
                from_email=self.from_email,
                cc=self.cc,
                bcc=self.bcc,
                mime_subtype="mixed",
                mime_charset="utf-8",
            )
        self.log.info("Sent the failure e-mail %r to %s", subject, ", ".join(addresses))


def task_failure_notifier(
    *,
    to: str | list[str] | None = None,
    smtp_conn_id: str = SMTP_CONN_ID,
    from_email: str | None = None,
) -> SmtpNotifier:
    """The ``on_failure_callback`` for every task of the DAG (``default_args``).

    ``to`` defaults to the Variable ``provisioning_notification_email``, read when a task fails;
    ``from_email`` to the connection's ``from_email`` extra. The e-mail names the DAG, task and
    run, carries the exception and links to the task's log. Sending errors are logged by Airflow's
    callback runner and never change the task's outcome."""
    return ProvisioningFailureNotifier(
        to=to if to is not None else RECIPIENT_TEMPLATE,
        from_email=from_email,
        smtp_conn_id=smtp_conn_id,
    )


def send_quarantine_notice(
    quarantine: Any, *, to: str | list[str], run_url: str | None = None, smtp_conn_id: str = SMTP_CONN_ID
) -> None:
    """The one e-mail that says the job is quarantined and why (``report.quarantine_notice``)."""
    from include.provisioning.report import quarantine_notice

    subject, html, text = quarantine_notice(quarantine, run_url=run_url)
    log.info("%s", text)
    send_report_files(to=to, subject=subject, html=html, text=text, smtp_conn_id=smtp_conn_id)
