"""Batch-import endpoints (seed 004 §3): parse → selector or service → projection → serialize.

No view writes a state field itself: starting, cancelling and retrying go through
``batch_import.services``, and every answer is built from ``batch_import.projection``.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from batch_import import services
from batch_import.api import examples
from batch_import.api.filters import ApiItemFilter
from batch_import.api.pagination import ItemPagination, LegacyBatchPagination, RunPagination
from batch_import.api.serializers import (
    ItemDetailOutputSerializer,
    ItemListOutputSerializer,
    LegacyBatchListOutputSerializer,
    LegacyBatchOutputSerializer,
    RunCreatedOutputSerializer,
    RunCreateInputSerializer,
    RunDetailOutputSerializer,
    RunListOutputSerializer,
    RunRollbackOutputSerializer,
)
from batch_import.filters import RunFilter
from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch
from batch_import.projection import (
    item_detail_projection,
    item_projection,
    recent_warnings,
    result_page,
    run_projection,
)
from batch_import.rollback import rollback_run, rollback_summary
from batch_import.run_requests import validate_run_request
from batch_import.selectors import (
    item_get_with_events,
    items_problems_first,
    run_get,
    runs_newest_first,
)
from relay_project.api.errors import InvalidInput, error_responses

# Run and item ids are opaque "<prefix>_<ulid>" strings; anything else cannot name one and is
# answered 404 by the catch-all route, before it reaches a query.
ID_PATTERN = "[A-Za-z0-9_-]{1,64}"
IDEMPOTENCY_KEY_MAX = 255

RUN_ID = OpenApiParameter(
    "run_id", str, OpenApiParameter.PATH, pattern=f"^{ID_PATTERN}$", description="A run id."
)
ITEM_ID = OpenApiParameter(
    "item_id", str, OpenApiParameter.PATH, pattern=f"^{ID_PATTERN}$", description="An item id."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {
        "type": "string",
        "minLength": 1,
        "maxLength": IDEMPOTENCY_KEY_MAX,
        "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$",
    },
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes the POST safe to repeat: the same key with the same body answers the run it "
        "created (200); the same key with another body is a 409 conflict. 1-255 printable "
        "ASCII characters."
    ),
)


def _actor(request: Request) -> str:
    return request.user.get_username() if request.user.is_authenticated else ""


def _idempotency_key(request: Request) -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not (key.isascii() and key.isprintable()):
        raise InvalidInput(
            {
                "Idempotency-Key": _("must be 1 to %(n)d printable ASCII characters")
                % {"n": IDEMPOTENCY_KEY_MAX}
            }
        )
    return key


def _run_or_404(run_id: str) -> ImportRun:
    try:
        return run_get(run_id)
    except ImportRun.DoesNotExist:
        raise NotFound(_("run %(run_id)s does not exist") % {"run_id": run_id}) from None


def _run_detail(run: ImportRun) -> dict:
    return RunDetailOutputSerializer(
        {"run": run_projection(run), "recent_warnings": recent_warnings(run)}
    ).data


def _item_detail(run_id: str, item_id: str) -> dict:
    try:
        item = item_get_with_events(run_id, item_id)
    except ImportRunItem.DoesNotExist:
        raise NotFound(
            _("item %(item_id)s does not exist in run %(run_id)s")
            % {"item_id": item_id, "run_id": run_id}
        ) from None
    return ItemDetailOutputSerializer(item_detail_projection(item, item.events.all())).data


# Class docstrings would become every operation's description in the schema; comments instead.
# Runs: list, start, read, cancel. ``state`` is never writable by a client.
class RunViewSet(viewsets.GenericViewSet):
    lookup_field = "run_id"
    lookup_value_regex = ID_PATTERN
    filter_backends = [DjangoFilterBackend]
    filterset_class = RunFilter
    pagination_class = RunPagination

    def get_queryset(self) -> QuerySet[ImportRun]:
        return runs_newest_first()

    @extend_schema(
        operation_id="batch_import_runs_list",
        tags=["batch-import"],
        summary="List runs, newest first",
        description="Filter by `state` and `access_mode`; `q` searches run_id, provider_id and "
        "base_url.",
        responses={
            200: OpenApiResponse(
                RunListOutputSerializer, examples=[examples.response("runs", examples.RUN_LIST)]
            ),
            **error_responses(400),
        },
    )
    def list(self, request: Request) -> Response:
        runs = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        body = {
            "runs": [run_projection(run) for run in runs],
            "next_cursor": self.paginator.next_cursor,
        }
        return Response(RunListOutputSerializer(body).data)

    @extend_schema(
        operation_id="batch_import_runs_create",
        tags=["batch-import"],
        summary="Start a run",
        description=(
            "Creates the run and its items and answers at once (201): *run created*, not the "
            "final result; follow `result_page` or poll the run. With "
            "`confirm_wait_timeout_sec > 0` the server first waits (bounded) for the run to "
            "finish and answers its state at that moment. Duplicate entries (same provider "
            "and key) collapse into one item."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=RunCreateInputSerializer,
        examples=[examples.RUN_CREATE_SUBSCRIPTION, examples.RUN_CREATE_SELF_SERVICE],
        responses={
            201: OpenApiResponse(
                RunCreatedOutputSerializer,
                description="Run created.",
                examples=[examples.response("run created", examples.RUN_CREATED, status=201)],
            ),
            200: OpenApiResponse(
                RunCreatedOutputSerializer,
                description="Idempotency-Key replay: the run this key created before.",
            ),
            **error_responses(400, 404, 409),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = RunCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run_request = validate_run_request(serializer.validated_data)
        started = services.run_start(
            request=run_request,
            created_by=_actor(request),
            idempotency_key=_idempotency_key(request),
        )
        run = started.run
        wait = min(run_request.confirm_wait_timeout_sec, settings.RELAY_API_MAX_WAIT_SEC)
        if wait > 0 and not run.is_terminal:
            run = services.run_wait(run_id=run.run_id, timeout_sec=wait)
        body = {**run_projection(run), "result_page": result_page(run.run_id)}
        return Response(
            RunCreatedOutputSerializer(body).data,
            status=status.HTTP_201_CREATED if started.created else status.HTTP_200_OK,
            headers={"Location": f"/api/batch-import/runs/{run.run_id}"},
        )

    @extend_schema(
        operation_id="batch_import_runs_retrieve",
        tags=["batch-import"],
        summary="Read a run with its warning summary",
        parameters=[RUN_ID],
        responses={
            200: OpenApiResponse(
                RunDetailOutputSerializer,
                examples=[examples.response("run", examples.RUN_DETAIL)],
            ),
            **error_responses(404),
        },
    )
    def retrieve(self, request: Request, run_id: str) -> Response:
        return Response(_run_detail(_run_or_404(run_id)))

    @extend_schema(
        operation_id="batch_import_runs_cancel",
        tags=["batch-import"],
        summary="Cancel a running run",
        description=(
            "Items not yet picked up stop now; items a worker holds finish their current step "
            "and then stop. 409 when the run is already finished."
        ),
        parameters=[RUN_ID],
        request=None,
        responses={200: RunDetailOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, run_id: str) -> Response:
        try:
            run = services.run_cancel(run_id=run_id, actor=_actor(request))
        except ImportRun.DoesNotExist:
            raise NotFound(_("run %(run_id)s does not exist") % {"run_id": run_id}) from None
        return Response(_run_detail(run))

    @extend_schema(
        operation_id="batch_import_runs_promote",
        tags=["batch-import"],
        summary="Turn a recent preview into a real run",
        description=(
            "Starts a real run with the preview's request and its probe results (entries are "
            "not probed again; those the preview could not probe are). 409 when the run is not "
            "a finished preview, was promoted already, or is older than an hour."
        ),
        parameters=[RUN_ID],
        request=None,
        responses={201: RunCreatedOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, run_id: str) -> Response:
        _run_or_404(run_id)
        run = services.run_promote(run_id=run_id, actor=_actor(request))
        body = {**run_projection(run), "result_page": result_page(run.run_id)}
        return Response(
            RunCreatedOutputSerializer(body).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/batch-import/runs/{run.run_id}"},
        )

    @extend_schema(
        methods=["GET"],
        operation_id="batch_import_runs_rollback_read",
        tags=["batch-import"],
        summary="What a rollback of the run would delete, and its rollback so far",
        parameters=[RUN_ID],
        responses={200: RunRollbackOutputSerializer, **error_responses(404)},
    )
    @extend_schema(
        methods=["POST"],
        operation_id="batch_import_runs_rollback",
        tags=["batch-import"],
        summary="Roll a finished run back (or resume its partial rollback)",
        description=(
            "Deletes, in reverse dependency order (subscriptions, keys, accounts, channel, "
            "group, managed users), only the host resources this run created that no other "
            "run on the host still uses; each deletion is an event. Deletions that fail stay "
            "in `remaining` and are retried with backoff; POST again to resume by hand. Once "
            "rolled back, POST changes nothing. 409 while the run is still running."
        ),
        parameters=[RUN_ID],
        request=None,
        responses={200: RunRollbackOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["get", "post"])
    def rollback(self, request: Request, run_id: str) -> Response:
        run = _run_or_404(run_id)
        if request.method == "POST":
            rollback_run(run_id=run.run_id, requested_by=_actor(request))
        return Response(RunRollbackOutputSerializer(rollback_summary(run)).data)


# Items of one run: list (problems first), read with events, retry.
class ItemViewSet(viewsets.GenericViewSet):
    lookup_field = "item_id"
    lookup_value_regex = ID_PATTERN
    filter_backends = [DjangoFilterBackend]
    filterset_class = ApiItemFilter
    pagination_class = ItemPagination

    def get_queryset(self) -> QuerySet[ImportRunItem]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no URL kwargs
            return ImportRunItem.objects.none()
        return items_problems_first(_run_or_404(self.kwargs["run_id"]))

    @extend_schema(
        operation_id="batch_import_items_list",
        tags=["batch-import"],
        summary="List the items of a run, problems first",
        description=(
            "Problems first: unfinished items, then broken/degraded ones, then the most "
            "recently updated. Every filter narrows the list; `q` searches provider_id, "
            "base_url and item_id."
        ),
        parameters=[RUN_ID],
        responses={
            200: OpenApiResponse(
                ItemListOutputSerializer,
                examples=[examples.response("items", examples.ITEM_LIST)],
            ),
            **error_responses(400, 404),
        },
    )
    def list(self, request: Request, run_id: str) -> Response:
        items = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        body = {
            "items": [item_projection(item) for item in items],
            "next_cursor": self.paginator.next_cursor,
        }
        return Response(ItemListOutputSerializer(body).data)

    @extend_schema(
        operation_id="batch_import_items_retrieve",
        tags=["batch-import"],
        summary="Read an item with its capability profile and event trail",
        parameters=[RUN_ID, ITEM_ID],
        responses={
            200: OpenApiResponse(
                ItemDetailOutputSerializer,
                examples=[examples.response("item", examples.ITEM_DETAIL)],
            ),
            **error_responses(404),
        },
    )
    def retrieve(self, request: Request, run_id: str, item_id: str) -> Response:
        return Response(_item_detail(run_id, item_id))

    @extend_schema(
        operation_id="batch_import_items_retry",
        tags=["batch-import"],
        summary="Retry a finished item",
        description=(
            "Sends a finished item back to the stage that failed, as a new attempt. 409 while "
            "the item is still moving through the pipeline."
        ),
        parameters=[RUN_ID, ITEM_ID],
        request=None,
        responses={200: ItemDetailOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, run_id: str, item_id: str) -> Response:
        try:
            services.item_retry(run_id=run_id, item_id=item_id, actor=_actor(request))
        except (ImportRun.DoesNotExist, ImportRunItem.DoesNotExist):
            raise NotFound(
                _("item %(item_id)s does not exist in run %(run_id)s")
                % {"item_id": item_id, "run_id": run_id}
            ) from None
        return Response(_item_detail(run_id, item_id))


LEGACY_BATCH_ID = OpenApiParameter(
    "batch_id", int, OpenApiParameter.PATH, description="A legacy import batch id."
)


# V1 ``import_batches``, read-only and deprecated: V2 clients read runs instead.
class LegacyBatchViewSet(viewsets.GenericViewSet):
    lookup_field = "pk"
    lookup_url_kwarg = "batch_id"
    lookup_value_regex = "[0-9]{1,18}"
    pagination_class = LegacyBatchPagination

    def get_queryset(self) -> QuerySet[LegacyImportBatch]:
        linked_items = ImportRunItem.objects.only(
            "item_id", "provider_id", "legacy_provider_id", "legacy_batch_id"
        ).order_by("position", "item_id")
        return LegacyImportBatch.objects.prefetch_related(Prefetch("items", linked_items))

    @extend_schema(
        operation_id="legacy_import_batches_list",
        tags=["legacy"],
        deprecated=True,
        summary="List legacy (V1) import batches",
        responses={200: LegacyBatchListOutputSerializer, **error_responses(400)},
    )
    def list(self, request: Request) -> Response:
        batches = self.paginate_queryset(self.get_queryset())
        body = {
            "import_batches": batches,
            "next_cursor": self.paginator.next_cursor,
        }
        return Response(LegacyBatchListOutputSerializer(body).data)

    @extend_schema(
        operation_id="legacy_import_batches_retrieve",
        tags=["legacy"],
        deprecated=True,
        summary="Read a legacy (V1) import batch with its items' ids",
        parameters=[LEGACY_BATCH_ID],
        responses={200: LegacyBatchOutputSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, batch_id: str) -> Response:
        try:
            batch = self.get_queryset().get(pk=int(batch_id))
        except LegacyImportBatch.DoesNotExist:
            raise NotFound(
                _("import batch %(batch_id)s does not exist") % {"batch_id": batch_id}
            ) from None
        return Response(LegacyBatchOutputSerializer(batch).data)
