"""The HTTP API: routes are thin; each parses, asks one service, and shapes the answer."""

from __future__ import annotations

from dataclasses import asdict
from http import HTTPStatus
from importlib import resources
from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import ValidationError

from wabacast.api.errors import (
    IDENTIFIER_MAX_LENGTH,
    IDENTIFIER_PATTERN,
    _field_of,
    _readable,
    documented,
    register_error_handlers,
)
from wabacast.api.guard import GuardedResolver, caller_of
from wabacast.api.models import (
    AccountCreateIn,
    AccountListOut,
    AccountOut,
    AccountUpdateIn,
    BusinessCreatedOut,
    BusinessCreateIn,
    BusinessKeywordsIn,
    BusinessListOut,
    BusinessOut,
    ContactIn,
    ContactListOut,
    ContactOut,
    ContactsUpsertIn,
    ContactsUpsertOut,
    CostOut,
    InboundListOut,
    InboundOut,
    KeyCreatedOut,
    KeyCreateIn,
    KeyListOut,
    KeyOut,
    MessagingLimitOut,
    OptOutIn,
    OptOutListOut,
    OptOutOut,
    ProgressOut,
    QueueCreateIn,
    QueueListOut,
    QueueOut,
    QueueUpdateIn,
    RetryFailedOut,
    RunListOut,
    RunOut,
    TemplateListOut,
    TemplateOut,
)
from wabacast.api.webhooks import register_webhook_routes
from wabacast.container import Services
from wabacast.domain.models import Account, ApiKeyRole, QueueStatus, Tag
from wabacast.errors import InvalidInputError, PermissionDeniedError
from wabacast.logic.accounts import AccountDraft, AccountPatch
from wabacast.logic.contacts import ContactDraft, Rejection
from wabacast.logic.processing import Progress
from wabacast.logic.queues import QueueDraft, QueuePatch, ScheduleDraft
from wabacast.phone import normalize_phone_number

API_PREFIX = "/api"
WHATSAPP = "/api/whatsapp"
ADMIN = "/api/admin"
OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
API_TITLE = "wabacast API"
API_VERSION = "1.0.0"
API_DESCRIPTION = "Bulk WhatsApp Business template messaging: accounts, queues, contacts and opt-outs."

Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
# Identifiers in paths: bounded well below DynamoDB's key limits (2,048 / 1,024 bytes), answered 400 otherwise.
Identifier = Annotated[str, Path(min_length=1, max_length=IDENTIFIER_MAX_LENGTH, pattern=IDENTIFIER_PATTERN)]
IdentifierQuery = Annotated[
    str | None, Query(alias="accountId", min_length=1, max_length=IDENTIFIER_MAX_LENGTH, pattern=IDENTIFIER_PATTERN)
]
NextToken = Annotated[str | None, Query(alias="nextToken", description="Opaque token from the previous page")]


def _json(status: HTTPStatus, body: str) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _openapi_document(app: APIGatewayHttpResolver) -> str:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description=API_DESCRIPTION,
        security_schemes={"bearerAuth": HTTPBearer(description="API key: Authorization: Bearer <key>")},
        security=[{"bearerAuth": []}],
    )


def _swagger_page(document: str) -> str:
    """Swagger UI with the document inline, as Powertools' `enable_swagger` serves it (its bundled script and CSS)."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
    return generate_swagger_html(
        # "</" escaped: the document sits in a <script> element.
        document.replace("</", "<\\/"),
        assets.joinpath("swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        assets.joinpath("swagger-ui.min.css").read_text(encoding="utf-8"),
        swagger_base_url="",
        oauth2_config=None,
    )


def _phone_in_path(raw: str) -> str:
    try:
        # Clients URL-encode the "+" (docs/api.md); whether the gateway decodes the path first varies by front end.
        return normalize_phone_number(unquote(raw))
    except ValueError as error:
        raise InvalidInputError(f"phoneNumber: {error}", field="phoneNumber") from None


def build_app(services: Services, logger: Logger) -> APIGatewayHttpResolver:
    # Authentication, role, body size and body shape are checked before any route (wabacast.api.guard); the
    # routes only read who the caller is.
    app = GuardedResolver(public_paths=(OPENAPI_PATH, DOCS_PATH))
    register_error_handlers(app, logger)
    register_webhook_routes(app, services.webhooks)
    page_size = services.settings.default_page_size

    def tenant() -> str:
        caller = caller_of(app.current_event)
        if caller.role != ApiKeyRole.BUSINESS or caller.business_id is None:
            raise PermissionDeniedError("this route needs a business API key")
        return caller.business_id

    def admin() -> str:
        caller = caller_of(app.current_event)
        if caller.role != ApiKeyRole.ADMIN:
            raise PermissionDeniedError("this route needs an admin API key")
        return str(app.current_event.request_context.authorizer.get_lambda.get("keyId", ""))

    read = (401, 403, 404)
    write = (400, 401, 403, 404, 409, 415, 422)

    # Documentation ------------------------------------------------------------------------------------------
    # Both routes build the document when asked: Powertools' OpenAPI models (`openapi.models`, which its
    # `enable_swagger` imports) cost about 0.4x `import boto3` and no other route needs them (docs/performance.md).
    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi() -> Response[str]:
        return _json(HTTPStatus.OK, _openapi_document(app))

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> Response[str]:
        return Response(status_code=HTTPStatus.OK, content_type="text/html", body=_swagger_page(_openapi_document(app)))

    # Admin: businesses and keys ------------------------------------------------------------------------------
    @app.post(f"{ADMIN}/businesses", tags=["admin"], responses=documented(201, "Created", *write))
    def create_business(body: Annotated[BusinessCreateIn, Body()]) -> Response[BusinessCreatedOut]:
        admin()
        business, key, plaintext = services.businesses.create(
            body.name, body.timezone, body.stop_keywords, body.start_keywords
        )
        out = BusinessCreatedOut(**BusinessOut.of(business).model_dump(), api_key=plaintext, key_id=key.key_id)
        return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, out)

    @app.get(f"{ADMIN}/businesses", tags=["admin"], responses=documented(200, "A page", *read, 422))
    def list_businesses(limit: Limit = page_size, next_token: NextToken = None) -> BusinessListOut:
        admin()
        page = services.businesses.list(limit, next_token)
        return BusinessListOut(items=[BusinessOut.of(item) for item in page.items], next_token=page.next_token)

    @app.put(
        f"{ADMIN}/businesses/<business_id>/keywords",
        tags=["admin"],
        responses=documented(200, "The business with its keywords", *write),
    )
    def set_business_keywords(business_id: Identifier, body: Annotated[BusinessKeywordsIn, Body()]) -> BusinessOut:
        admin()
        business = services.businesses.set_keywords(business_id, body.stop_keywords, body.start_keywords)
        return BusinessOut.of(business)

    @app.get(f"{ADMIN}/businesses/<business_id>/keys", tags=["admin"], responses=documented(200, "A page", *read, 422))
    def list_keys(business_id: Identifier, limit: Limit = page_size, next_token: NextToken = None) -> KeyListOut:
        admin()
        page = services.businesses.list_keys(business_id, limit, next_token)
        return KeyListOut(items=[KeyOut.of(item) for item in page.items], next_token=page.next_token)

    @app.post(f"{ADMIN}/businesses/<business_id>/keys", tags=["admin"], responses=documented(201, "Created", *write))
    def create_key(
        business_id: Identifier, body: Annotated[KeyCreateIn | None, Body()] = None
    ) -> Response[KeyCreatedOut]:
        admin()
        key, plaintext = services.businesses.issue_key(business_id, body.label if body else None)
        out = KeyCreatedOut(**KeyOut.of(key).model_dump(), api_key=plaintext)
        return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, out)

    @app.delete(
        f"{ADMIN}/businesses/<business_id>/keys/<key_id>", tags=["admin"], responses=documented(204, "Revoked", *read)
    )
    def revoke_key(business_id: Identifier, key_id: Identifier) -> Response[None]:
        admin()
        services.businesses.revoke_key(business_id, key_id)
        return Response(HTTPStatus.NO_CONTENT)

    # Admin keys: a leaked one is rotated or revoked with another -------------------------------------------------
    @app.get(f"{ADMIN}/keys", tags=["admin"], responses=documented(200, "A page", *read, 422))
    def list_admin_keys(limit: Limit = page_size, next_token: NextToken = None) -> KeyListOut:
        admin()
        page = services.businesses.list_admin_keys(limit, next_token)
        return KeyListOut(items=[KeyOut.of(item) for item in page.items], next_token=page.next_token)

    @app.post(f"{ADMIN}/keys", tags=["admin"], responses=documented(201, "Created", *write))
    def create_admin_key(body: Annotated[KeyCreateIn | None, Body()] = None) -> Response[KeyCreatedOut]:
        admin()
        key, plaintext = services.businesses.issue_admin_key(body.label if body else None)
        out = KeyCreatedOut(**KeyOut.of(key).model_dump(), api_key=plaintext)
        return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, out)

    @app.post(
        f"{ADMIN}/keys/<key_id>/rotate",
        tags=["admin"],
        responses=documented(201, "The new key; the old one is revoked", *write),
    )
    def rotate_admin_key(
        key_id: Identifier, body: Annotated[KeyCreateIn | None, Body()] = None
    ) -> Response[KeyCreatedOut]:
        admin()
        key, plaintext = services.businesses.rotate_admin_key(key_id, body.label if body else None)
        out = KeyCreatedOut(**KeyOut.of(key).model_dump(), api_key=plaintext)
        return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, out)

    @app.delete(f"{ADMIN}/keys/<key_id>", tags=["admin"], responses=documented(204, "Revoked", *read, 409))
    def revoke_admin_key(key_id: Identifier) -> Response[None]:
        services.businesses.revoke_admin_key(key_id, caller_key_id=admin())
        return Response(HTTPStatus.NO_CONTENT)

    # Accounts ------------------------------------------------------------------------------------------------
    def account_out(account: Account) -> AccountOut:
        """One account, with what its messages cost so far (its cost shards: one BatchGetItem) and its messaging
        limit's use (its rate item: one GetItem)."""
        cost = services.processing.account_cost(account.id)
        limit = services.processing.messaging_limit(account)
        return AccountOut.of(
            account,
            cost=CostOut.model_validate(asdict(cost)),
            messaging_limit=MessagingLimitOut.model_validate(asdict(limit)) if limit is not None else None,
        )

    @app.get(f"{WHATSAPP}/accounts", tags=["accounts"], responses=documented(200, "A page", *read, 422))
    def list_accounts(limit: Limit = page_size, next_token: NextToken = None) -> AccountListOut:
        page = services.accounts.list(tenant(), limit, next_token)
        return AccountListOut(items=[AccountOut.of(item) for item in page.items], next_token=page.next_token)

    @app.get(f"{WHATSAPP}/accounts/<account_id>", tags=["accounts"], responses=documented(200, "OK", *read))
    def get_account(account_id: Identifier) -> AccountOut:
        return account_out(services.accounts.get(tenant(), account_id))

    @app.get(
        f"{WHATSAPP}/accounts/<account_id>/inbound", tags=["accounts"], responses=documented(200, "A page", *read, 422)
    )
    def list_inbound(account_id: Identifier, limit: Limit = page_size, next_token: NextToken = None) -> InboundListOut:
        page = services.inbound.list(tenant(), account_id, limit, next_token)
        return InboundListOut(items=[InboundOut.of(item) for item in page.items], next_token=page.next_token)

    @app.post(
        f"{WHATSAPP}/accounts/<account_id>/sync",
        tags=["accounts"],
        responses=documented(
            200,
            "The account after reading its provider now: ownership check, quality, tier, status, templates. A "
            "provider that cannot be read is reported in `syncError` (and `statusReason` while unverified)",
            *read,
            409,
        ),
    )
    def sync_account(account_id: Identifier) -> AccountOut:
        return account_out(services.health.sync(tenant(), account_id))

    @app.get(
        f"{WHATSAPP}/accounts/<account_id>/templates",
        tags=["accounts"],
        responses=documented(200, "A page of the account's templates as last synced", *read, 422),
    )
    def list_templates(
        account_id: Identifier, limit: Limit = page_size, next_token: NextToken = None
    ) -> TemplateListOut:
        page = services.health.templates(tenant(), account_id, limit, next_token)
        return TemplateListOut(items=[TemplateOut.of(item) for item in page.items], next_token=page.next_token)

    @app.post(f"{WHATSAPP}/accounts", tags=["accounts"], responses=documented(201, "Created", *write))
    def create_account(body: Annotated[AccountCreateIn, Body()]) -> Response[AccountOut]:
        business_id = tenant()
        draft = AccountDraft.model_validate(body.model_dump())
        account = services.accounts.create(business_id, draft)
        return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, account_out(account))

    @app.put(f"{WHATSAPP}/accounts/<account_id>", tags=["accounts"], responses=documented(200, "OK", *write))
    def update_account(account_id: Identifier, body: Annotated[AccountUpdateIn, Body()]) -> AccountOut:
        business_id = tenant()
        patch = AccountPatch.model_validate(body.model_dump(include=body.model_fields_set))
        return account_out(services.accounts.update(business_id, account_id, patch))

    @app.delete(
        f"{WHATSAPP}/accounts/<account_id>", tags=["accounts"], responses=documented(204, "Deleted", 401, 403, 404, 409)
    )
    def delete_account(account_id: Identifier) -> Response[None]:
        services.accounts.delete(tenant(), account_id)
        return Response(HTTPStatus.NO_CONTENT)

    # Queues --------------------------------------------------------------------------------------------------
    @app.get(f"{WHATSAPP}/queue", tags=["queues"], responses=documented(200, "A page", *read, 422))
    def list_queues(
        status: Annotated[QueueStatus | None, Query()] = None,
        account_id: IdentifierQuery = None,
        limit: Limit = page_size,
        next_token: NextToken = None,
    ) -> QueueListOut:
        page = services.queues.list(tenant(), status=status, account_id=account_id, limit=limit, next_token=next_token)
        return QueueListOut(
            items=[QueueOut.of(item, with_recipients=False) for item in page.items], next_token=page.next_token
        )

    @app.get(f"{WHATSAPP}/queue/<queue_id>", tags=["queues"], responses=documented(200, "OK", *read))
    def get_queue(queue_id: Identifier) -> QueueOut:
        return QueueOut.of(services.queues.get(tenant(), queue_id))

    @app.post(f"{WHATSAPP}/queue", tags=["queues"], responses=documented(201, "Created", *write))
    def create_queue(body: Annotated[QueueCreateIn, Body()]) -> Response[QueueOut]:
        business_id = tenant()
        draft = QueueDraft.model_validate(body.model_dump())
        queue = services.queues.create(business_id, draft)
        return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON, QueueOut.of(queue))

    @app.put(f"{WHATSAPP}/queue/<queue_id>", tags=["queues"], responses=documented(200, "OK", *write))
    def update_queue(queue_id: Identifier, body: Annotated[QueueUpdateIn, Body()]) -> QueueOut:
        business_id = tenant()
        values = body.model_dump(include=body.model_fields_set)
        if "schedule" in values:
            values["schedule"] = ScheduleDraft.model_validate(values["schedule"])
        patch = QueuePatch.model_validate(values)
        return QueueOut.of(services.queues.update(business_id, queue_id, patch))

    @app.delete(
        f"{WHATSAPP}/queue/<queue_id>", tags=["queues"], responses=documented(204, "Deleted", 401, 403, 404, 409)
    )
    def delete_queue(queue_id: Identifier) -> Response[None]:
        services.queues.delete(tenant(), queue_id)
        return Response(HTTPStatus.NO_CONTENT)

    # Processing ----------------------------------------------------------------------------------------------
    def progress_out(progress: Progress) -> ProgressOut:
        return ProgressOut.model_validate(asdict(progress))

    @app.post(
        f"{WHATSAPP}/queue/<queue_id>/process",
        tags=["processing"],
        responses=documented(202, "Accepted: the planner sends in the background", 401, 403, 404, 409),
    )
    def process_queue(queue_id: Identifier) -> Response[ProgressOut]:
        progress = services.processing.process(tenant(), queue_id)
        return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, progress_out(progress))

    @app.get(
        f"{WHATSAPP}/queue/<queue_id>/process", tags=["processing"], responses=documented(200, "Live progress", *read)
    )
    def queue_progress(queue_id: Identifier) -> ProgressOut:
        return progress_out(services.processing.progress(tenant(), queue_id))

    @app.get(f"{WHATSAPP}/queue/<queue_id>/runs", tags=["processing"], responses=documented(200, "A page", *read))
    def queue_runs(
        queue_id: Annotated[str, Path()], limit: Limit = page_size, next_token: NextToken = None
    ) -> RunListOut:
        page = services.processing.runs(tenant(), queue_id, limit=limit, next_token=next_token)
        return RunListOut(items=[RunOut.model_validate(asdict(run)) for run in page.items], next_token=page.next_token)

    @app.post(
        f"{WHATSAPP}/queue/<queue_id>/pause",
        tags=["processing"],
        responses=documented(200, "Paused", 401, 403, 404, 409),
    )
    def pause_queue(queue_id: Identifier) -> ProgressOut:
        return progress_out(services.processing.pause(tenant(), queue_id))

    @app.post(
        f"{WHATSAPP}/queue/<queue_id>/resume",
        tags=["processing"],
        responses=documented(200, "Resumed", 401, 403, 404, 409),
    )
    def resume_queue(queue_id: Identifier) -> ProgressOut:
        return progress_out(services.processing.resume(tenant(), queue_id))

    @app.post(
        f"{WHATSAPP}/queue/<queue_id>/cancel",
        tags=["processing"],
        responses=documented(200, "Cancelled", 401, 403, 404, 409),
    )
    def cancel_queue(queue_id: Identifier) -> ProgressOut:
        return progress_out(services.processing.cancel(tenant(), queue_id))

    @app.post(
        f"{WHATSAPP}/queue/<queue_id>/retry-failed",
        tags=["processing"],
        responses=documented(200, "Re-queued", 401, 403, 404, 409),
    )
    def retry_failed(queue_id: Identifier) -> RetryFailedOut:
        report = services.processing.retry_failed(tenant(), queue_id)
        return RetryFailedOut(requeued=report.requeued, more=report.more)

    # Contacts and opt-outs -----------------------------------------------------------------------------------
    @app.post(f"{WHATSAPP}/contacts", tags=["contacts"], responses=documented(200, "Upserted", *write))
    def upsert_contacts(body: Annotated[ContactsUpsertIn, Body()]) -> ContactsUpsertOut:
        business_id = tenant()
        rows: list[tuple[int, ContactDraft]] = []
        rejected: list[Rejection] = []
        for index, raw in enumerate(body.contacts):
            try:
                row = ContactIn.model_validate(raw)
            except ValidationError as error:
                problem = error.errors(include_input=False)[0]
                field = _field_of(problem["loc"])
                phone = raw.get("phoneNumber")
                # Same wording as the request-level errors (wabacast.api.errors).
                text = {"missing": "is required", "extra_forbidden": "is not a known field"}.get(
                    problem["type"], _readable(problem["msg"])
                )
                rejected.append(
                    Rejection(
                        index=index,
                        phone_number=phone if isinstance(phone, str) else None,
                        field=field,
                        message=f"{field}: {text}" if field else text,
                    )
                )
                continue
            rows.append((index, ContactDraft.model_validate(row.model_dump(include=row.model_fields_set))))
        result = services.contacts.upsert(business_id, rows, rejected)
        return ContactsUpsertOut.model_validate(result.model_dump())

    @app.get(f"{WHATSAPP}/contacts", tags=["contacts"], responses=documented(200, "A page", *read, 422))
    def list_contacts(
        tag: Annotated[Tag | None, Query()] = None, limit: Limit = page_size, next_token: NextToken = None
    ) -> ContactListOut:
        page = services.contacts.list(tenant(), tag=tag, limit=limit, next_token=next_token)
        return ContactListOut(items=[ContactOut.of(item) for item in page.items], next_token=page.next_token)

    @app.delete(
        f"{WHATSAPP}/contacts/<phone_number>",
        tags=["contacts"],
        responses=documented(204, "Deleted", 401, 403, 404, 422),
    )
    def delete_contact(phone_number: Annotated[str, Path()]) -> Response[None]:
        business_id = tenant()
        services.contacts.delete(business_id, _phone_in_path(phone_number))
        return Response(HTTPStatus.NO_CONTENT)

    @app.post(
        f"{WHATSAPP}/opt-outs",
        tags=["opt-outs"],
        responses=documented(201, "Recorded", *write, extra={200: "Already opted out"}),
    )
    def add_opt_out(body: Annotated[OptOutIn, Body()]) -> Response[OptOutOut]:
        opt_out, created = services.contacts.opt_out(tenant(), body.phone_number, body.reason, scope=body.scope)
        status = HTTPStatus.CREATED if created else HTTPStatus.OK
        return Response(status, content_types.APPLICATION_JSON, OptOutOut.of(opt_out))

    @app.get(f"{WHATSAPP}/opt-outs", tags=["opt-outs"], responses=documented(200, "A page", *read, 422))
    def list_opt_outs(limit: Limit = page_size, next_token: NextToken = None) -> OptOutListOut:
        page = services.contacts.list_opt_outs(tenant(), limit, next_token)
        return OptOutListOut(items=[OptOutOut.of(item) for item in page.items], next_token=page.next_token)

    @app.delete(
        f"{WHATSAPP}/opt-outs/<phone_number>",
        tags=["opt-outs"],
        responses=documented(204, "Removed", 401, 403, 404, 422),
    )
    def remove_opt_out(phone_number: Annotated[str, Path()]) -> Response[None]:
        business_id = tenant()
        services.contacts.remove_opt_out(business_id, _phone_in_path(phone_number))
        return Response(HTTPStatus.NO_CONTENT)

    return app
