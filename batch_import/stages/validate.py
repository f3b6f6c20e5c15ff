"""Validate stage — the only writer of ``access_status``.

The only proof that counts is the host's gateway serving a real chat completion with the
access mode's key: GET /v1/models lists the smoke model (a list read lately for the same key
that names it counts: ``RecentListings``) AND POST /v1/chat/completions answers 200 with
content.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from batch_import.failures import gateway_failure
from batch_import.models import ImportRun, ImportRunItem
from batch_import.stages import StageContext
from batch_import.stages.access import validation_email
from batch_import.stages.common import add_advisories, record_start, schedule_retry, stage_retries
from batch_import.stages.confirm import gateway_model
from batch_import.transitions import EventType, Writer, transition_item
from hosts.resources import user_key
from hosts.sub2api import (
    ChatCompletion,
    GatewayRefusal,
    HostError,
    Sub2ApiClient,
    shared_client_for_host,
)
from hosts.sub2api.errors import MAX_MESSAGE_CHARS
from relay_project.crypto import Secret
from relay_project.logging import redact
from relay_project.messages import Msg
from relay_project.process_memo import ProcessMemo

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus
Confirmation = ImportRunItem.ConfirmationStatus
FailureClass = ImportRunItem.FailureClass


class NoAccessKey(Exception):
    def __init__(self, message: Msg) -> None:
        self.message = message
        super().__init__(message.english)


@dataclass(frozen=True)
class GatewayProblem:
    """Why the gateway gave no proof: a failed call, a refusal, or the model not listed.
    ``text`` is how the item's error names it (status, the host's code, its message); a
    ``Msg`` when the words are ours, so they read in the operator's language."""

    status: int | None
    reason: str
    text: str | Msg
    transient: bool
    refusal: str = ""
    retry_after: float = 0.0

    @classmethod
    def from_error(cls, exc: HostError) -> GatewayProblem:
        return cls(exc.status, exc.reason, str(exc), exc.transient)

    @classmethod
    def from_completion(cls, completion: ChatCompletion) -> GatewayProblem:
        head = " ".join(p for p in (f"HTTP {completion.status}", completion.error_type) if p)
        message = redact(completion.error_message)[:MAX_MESSAGE_CHARS]
        text = f"{head}: {message}" if message else head
        return cls(
            completion.status,
            completion.error_type,
            text,
            completion.transient,
            completion.refusal,
            completion.retry_after,
        )

    def __str__(self) -> str:
        return str(self.text)


NOT_LISTED = gettext_noop("HTTP 404 MODEL_NOT_LISTED: gateway /v1/models does not list %(model)s")


class RecentListings:
    """The gateway's model lists this worker process read lately, per host and validation
    key (one per group: the items of one provider share it), so that the next items of the
    key take a list that names their model from it instead of asking again: a list that
    does not name it, or is older than ``RELAY_VALIDATE_LISTING_REUSE``, is read anew.

    What it changes: a model the host dropped since the list was read is found missing by
    the chat completion that follows, as it would have been had it gone between a fresh
    list and the chat; the chat stays each item's proof."""

    MAX_KEYS = 256

    def __init__(self) -> None:
        # (host, key digest) → when the list was read, and the models it named.
        self._lists: ProcessMemo[tuple[str, str], tuple[float, frozenset[str]]] = ProcessMemo(
            self.MAX_KEYS
        )

    def names(self, where: tuple[str, str], model: str) -> bool:
        """Whether a list read lately for ``where`` names ``model``."""
        reuse = settings.RELAY_VALIDATE_LISTING_REUSE
        read = self._lists.get(where)
        return read is not None and time.monotonic() - read[0] < reuse and model in read[1]

    def remember(self, where: tuple[str, str], models: list[str]) -> None:
        self._lists.put(where, (time.monotonic(), frozenset(models)))

    def clear(self) -> None:
        self._lists.clear()


RECENT_LISTINGS = RecentListings()


def _listing_key(client: Sub2ApiClient, key: Secret) -> tuple[str, str]:
    """Where a list is valid: the host and the key (by its digest: no key kept in clear)."""
    return client.base_url, hashlib.sha256(key.reveal().encode()).hexdigest()


def ask_gateway(
    client: Sub2ApiClient, key: Secret, model: str
) -> tuple[ChatCompletion | None, dict, GatewayProblem | None]:
    """``GET /v1/models`` must list the model (a list read lately for the same key that names
    it stands: ``RecentListings``), then one chat completion → ``(completion, evidence,
    problem)``; ``problem`` is None when the gateway answered 200."""
    where = _listing_key(client, key)
    try:
        if not RECENT_LISTINGS.names(where, model):
            listed = [m.id for m in client.gateway.models(key)]
            RECENT_LISTINGS.remember(where, listed)
            if model not in listed:
                problem = GatewayProblem(
                    404, "MODEL_NOT_LISTED", Msg(NOT_LISTED, model=model), transient=False
                )
                preview = f"gateway /v1/models does not list {model}"
                return None, completion_evidence(model, status=404, text=preview), problem
        started = time.monotonic()
        completion = client.gateway.chat_completion(key, model=model, max_tokens=16)
    except HostError as exc:
        return (
            None,
            completion_evidence(model, status=exc.status, text=exc.message),
            (GatewayProblem.from_error(exc)),
        )
    evidence = completion_evidence(
        model,
        status=completion.status,
        started=started,
        answered_model=completion.model,
        text=completion.content if completion.ok else completion.error_message,
    )
    problem = None if completion.ok else GatewayProblem.from_completion(completion)
    return completion, evidence, problem


# Gateway answers that may hide their cause (§9.5): "no account" on every build, "every account
# is rate-limited", and failover exhaustion without a refusal (429 "Upstream rate limit
# exceeded", 502 "Upstream request failed" / "… authentication failed", 503 overloaded).
HIDING_REFUSALS = frozenset({GatewayRefusal.NO_ACCOUNT, GatewayRefusal.RATE_LIMITED})
HIDING_STATUSES = frozenset({429, 502, 503})
# Platform of the groups relay-manager routes through (openai accounts, §9.1).
GATEWAY_PLATFORM = "openai"


def look_behind(
    client: Sub2ApiClient, item: ImportRunItem, problem: GatewayProblem, *, model: str
) -> GatewayProblem:
    """Ask the admin API what the gateway's answer hides: the item's account as the host now
    sees it (its upstream's 429, 402 or 401: quota or a refused key, not routing), then the
    group's channel (a pricing restriction the generic build reports as a warm-up). The
    problem is returned unchanged when the host tells nothing more."""
    hidden = problem.refusal in HIDING_REFUSALS or (
        not problem.refusal and problem.status in HIDING_STATUSES
    )
    if not hidden:
        return problem
    try:
        refusal, detail, wait = _account_cause(client, item)
        if not refusal and problem.refusal == GatewayRefusal.NO_ACCOUNT:
            refusal, detail = _channel_cause(client, item, model)
    except HostError:
        return problem
    if not refusal:
        return problem
    return replace(
        problem,
        refusal=refusal,
        text=f"{problem.text} ({detail})" if detail else problem.text,
        transient=refusal not in GatewayRefusal.LASTING,
        retry_after=max(problem.retry_after, wait),
    )


def _account_cause(client: Sub2ApiClient, item: ImportRunItem) -> tuple[str, str, float]:
    """``(refusal, the host's note on the account, seconds to wait)`` from the item's account;
    ``""`` when it is fine."""
    if not item.account_id:
        return "", "", 0.0
    account = client.accounts.get(item.account_id)
    now = timezone.now()
    refusal = account.upstream_refusal(now)
    if refusal == GatewayRefusal.UPSTREAM_RATE_LIMITED:
        until = account.rate_limit_reset_at or account.temp_unschedulable_until
        wait = max(0.0, (until - now).total_seconds()) if until else 0.0
        return refusal, "", wait
    if refusal:  # the host's own words on the account ("Payment required (402): …")
        reason = redact(account.error_message or account.temp_unschedulable_reason)
        return refusal, reason[:MAX_MESSAGE_CHARS], 0.0
    return "", "", 0.0


def _channel_cause(client: Sub2ApiClient, item: ImportRunItem, model: str) -> tuple[str, str]:
    """``(refusal, "")`` when the group's channel refuses the model by its pricing."""
    if item.channel_id and client.channels.get(item.channel_id).refuses(GATEWAY_PLATFORM, model):
        return GatewayRefusal.CHANNEL_RESTRICTED, ""
    return "", ""


# Refusals that pass, but not soon: no retry, the item is degraded rather than broken.
PASS_LATER = frozenset({GatewayRefusal.KEY_QUOTA, GatewayRefusal.UPSTREAM_QUOTA})


def gateway_problem(
    item: ImportRunItem, problem: GatewayProblem, *, model: str, evidence: dict
) -> None:
    """A refusal passes (retried, then degraded) or lasts (broken), by the host's meaning."""
    attempt = stage_retries(item) + 1
    why = refusal_reason(problem.refusal, model=model, group_id=item.group_id)
    payload = {"status": problem.status, "reason": problem.reason, "refusal": problem.refusal}
    if problem.transient and attempt <= settings.RELAY_VALIDATE_MAX_RETRIES:
        if problem.retry_after:
            payload["retry_after"] = problem.retry_after
        schedule_retry(
            item,
            attempt=attempt,
            reason=Msg(gettext_noop("gateway: %(why)s%(error)s"), why=why, error=problem.text),
            payload=payload,
            at_least=problem.retry_after,
        )
    elif problem.transient or problem.refusal in PASS_LATER:
        verdict(
            item,
            Access.DEGRADED,
            Msg(
                gettext_noop("gateway kept failing: %(why)s%(error)s"), why=why, error=problem.text
            ),
            failure_class=gateway_failure(problem),
            evidence=evidence,
            payload=payload,
        )
    else:
        verdict(
            item,
            Access.BROKEN,
            Msg(gettext_noop("gateway refused: %(why)s%(error)s"), why=why, error=problem.text),
            failure_class=gateway_failure(problem),
            evidence=evidence,
            payload=payload,
        )


def access_key(item: ImportRunItem) -> Secret:
    run = item.run
    if run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
        return run.probe_api_key
    email = validation_email(item)
    key = user_key(run.host, email, item.group_id)
    if key is None:
        raise NoAccessKey(
            Msg(
                gettext_noop("no managed key for %(email)s in group %(group)s"),
                email=email,
                group=item.group_id,
            )
        )
    return key


def run_validate(item: ImportRunItem, ctx: StageContext) -> ImportRunItem | None:
    record_start(item)
    host = item.run.host
    if "chat_completions" in (host.missing_capabilities or []):
        return verdict(
            item,
            Access.DEGRADED,
            Msg(gettext_noop("the host gateway has no /v1/chat/completions route")),
            advisories=("chat_completions_unsupported",),
            failure_class=FailureClass.HOST_COMPATIBILITY_GAP,
        )
    model = gateway_model(item)
    try:
        key = access_key(item)
    except NoAccessKey as exc:
        return verdict(item, Access.BROKEN, exc.message, failure_class=FailureClass.INTERNAL_ERROR)
    client = shared_client_for_host(host, transport=ctx.host_transport)
    completion, evidence, problem = ask_gateway(client, key, model)
    if problem is not None:
        problem = look_behind(client, item, problem, model=model)
    if problem is not None:
        gateway_problem(item, problem, model=model, evidence=evidence)
        return None
    if not completion.content:
        attempt = stage_retries(item) + 1
        if attempt <= settings.RELAY_VALIDATE_MAX_RETRIES:
            schedule_retry(
                item,
                attempt=attempt,
                reason=Msg(gettext_noop("gateway answered 200 without content")),
            )
            return None
        return verdict(
            item,
            Access.DEGRADED,
            Msg(gettext_noop("gateway answered 200 without content")),
            failure_class=FailureClass.UPSTREAM_ERROR,
            evidence=evidence,
        )
    if item.confirmation_status == Confirmation.FAILED:
        return verdict(
            item,
            Access.DEGRADED,
            Msg(gettext_noop("gateway answered, but the account test did not pass")),
            failure_class=FailureClass.UPSTREAM_ERROR,
            evidence=evidence,
        )
    advisories = ("warmup_retried",) if stage_retries(item) else ()
    if item.run.access_mode == ImportRun.AccessMode.SELF_SERVICE and routing_ambiguous(item):
        advisories = (*advisories, "validation_routing_ambiguous")
    return verdict(
        item,
        Access.ACTIVE,
        Msg(gettext_noop("gateway served %(model)s"), model=model),
        advisories=advisories,
        evidence=evidence,
    )


REFUSAL_REASONS = {
    GatewayRefusal.NO_ACCOUNT: gettext_noop(
        "no schedulable account for %(model)s yet (a new account warms up) — "
    ),
    GatewayRefusal.RATE_LIMITED: gettext_noop("every account for %(model)s is rate-limited — "),
    GatewayRefusal.MODEL_NOT_FOUND: gettext_noop(
        "no account of group %(group_id)s maps %(model)s — "
    ),
    GatewayRefusal.CHANNEL_RESTRICTED: gettext_noop(
        "the channel of group %(group_id)s prices no %(model)s — "
    ),
    GatewayRefusal.KEY_QUOTA: gettext_noop(
        "the access key has used up its quota or usage limit — "
    ),
    GatewayRefusal.UPSTREAM_RATE_LIMITED: gettext_noop(
        "the upstream of %(model)s rate-limits its key (429): the host pauses the account — "
    ),
    GatewayRefusal.UPSTREAM_QUOTA: gettext_noop(
        "the upstream key for %(model)s is out of quota or balance — "
    ),
    GatewayRefusal.UPSTREAM_AUTH: gettext_noop("the upstream refused the key for %(model)s — "),
}


def refusal_reason(refusal: str, *, model: str, group_id: int | None) -> Msg | str:
    """What a "no account" answer means, whatever build said it (§13): a warm-up is retried,
    rate limits are retried and then degrade, a missing mapping or price is definitive; what
    the account's upstream did (``look_behind``) is quota or a refused key, never routing."""
    template = REFUSAL_REASONS.get(refusal)
    return Msg(template, model=model, group_id=group_id) if template else ""


def routing_ambiguous(item: ImportRunItem) -> bool:
    """Another provider's item in the same group serves one of our families."""
    families = set(item.canonical_model_families)
    others = (
        ImportRunItem.objects.filter(group_id=item.group_id)
        .exclude(provider_id=item.provider_id)
        .values_list("canonical_model_families", flat=True)
    )
    return any(families & set(other) for other in others)


PREVIEW_CHARS = 80


def completion_evidence(
    model: str,
    *,
    status: int | None,
    started: float | None = None,
    answered_model: str = "",
    text: str = "",
) -> dict:
    """What the gateway answered, kept on the item so an operator sees the proof (seed 003)."""
    latency = None if started is None else round((time.monotonic() - started) * 1000)
    return {
        "http_status": status,
        "model": model,
        "answered_model": answered_model,
        "latency_ms": latency,
        "preview": " ".join(text.split())[:PREVIEW_CHARS],
    }


def verdict(
    item: ImportRunItem,
    access: str,
    message: str | Msg,
    *,
    advisories: tuple[str, ...] = (),
    error: str | Msg | None = None,
    failure_class: str = "",
    error_stage: str = Stage.VALIDATE,
    event_type: str = EventType.VALIDATED,
    payload: dict | None = None,
    evidence: dict | None = None,
) -> ImportRunItem:
    """End the item with ``access``. The error fields always describe the present: an active
    item has none (its history stays in the events), a degraded or broken one always has a
    message and a failure class."""
    fields: dict = {
        "advisory_messages": add_advisories(item, *advisories),
        "next_retry_at": None,
    }
    if evidence is not None:
        fields["validation_evidence"] = evidence
    if access == Access.ACTIVE:
        fields.update(last_error=None, last_error_stage=None, failure_class="")
    else:
        fields.update(
            last_error=error or message,
            last_error_stage=error_stage,
            failure_class=failure_class or FailureClass.INTERNAL_ERROR,
        )
    return transition_item(
        item_id=item.item_id,
        held=item,
        stage=Stage.DONE,
        access_status=access,
        event_type=event_type,
        message=message,
        fields=fields,
        payload=payload,
        writer=Writer.VALIDATION,
    )


def record_failure(
    item: ImportRunItem,
    *,
    error: str | Msg,
    failure_class: str,
    transient: bool = False,
    payload: dict | None = None,
) -> None:
    """The outcome rule for an item a stage ends before any gateway proof: a definitive
    failure is ``broken``, transient failures that exhausted their retries ``degraded``. A
    preview never claims a verdict: its items stay ``unknown``."""
    if item.run.is_preview:
        transition_item(
            item_id=item.item_id,
            stage=Stage.DONE,
            event_type=EventType.ERROR,
            message=error,
            fields={
                "last_error_stage": item.current_stage,
                "last_error": error,
                "failure_class": failure_class,
                "next_retry_at": None,
            },
            payload=payload,
        )
        return
    verdict(
        item,
        Access.DEGRADED if transient else Access.BROKEN,
        error,
        failure_class=failure_class,
        error_stage=item.current_stage,
        event_type=EventType.ERROR,
        payload=payload,
    )


def record_rolled_back(item: ImportRunItem, *, when, message: str | Msg) -> None:
    """The run's rollback removed what this item made: it can no longer read ``active``. An
    item that had already failed keeps its own failure; it only learns it was rolled back."""
    if item.current_stage == Stage.DONE and item.access_status in (Access.BROKEN, Access.DEGRADED):
        transition_item(
            item_id=item.item_id,
            event_type=EventType.ROLLED_BACK,
            message=message,
            fields={"rolled_back_at": when},
        )
        return
    fields = {
        "rolled_back_at": when,
        "next_retry_at": None,
        "last_error": message,
        "last_error_stage": item.current_stage,
        "failure_class": FailureClass.ROLLED_BACK,
    }
    transition_item(
        item_id=item.item_id,
        stage=Stage.DONE,
        access_status=Access.UNKNOWN if item.run.is_preview else Access.BROKEN,
        event_type=EventType.ROLLED_BACK,
        message=message,
        fields=fields,
        writer=Writer.VALIDATION,
    )
