"""An account's message templates as the last sync (or a later template webhook) left them.

One item per (account, name, language) in the business's partition, SK `TEMPLATE#<account>#<name>#<language>`:
listing an account's templates is one Query on the prefix, and no index is involved (templates are written only
when a sync finds a change, or when Meta reports a review decision).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.base import Item, TableGateway, business_pk, to_attributes
from wabacast.domain.health import AccountTemplate, TemplateStatus
from wabacast.domain.models import Page, TemplateCategory
from wabacast.storage.table import PARTITION_KEY, SORT_KEY

TEMPLATE_PREFIX = "TEMPLATE#"
_QUERY_PAGE = 100


def template_prefix(account_id: str) -> str:
    return f"{TEMPLATE_PREFIX}{account_id}#"


def template_sk(account_id: str, name: str, language: str) -> str:
    return f"{template_prefix(account_id)}{name}#{language}"


class TemplateRepository:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def get(self, business_id: str, account_id: str, name: str, language: str) -> AccountTemplate | None:
        item = self._table.get(business_pk(business_id), template_sk(account_id, name, language))
        return _to_template(item) if item else None

    def list(self, business_id: str, account_id: str, limit: int, next_token: str | None) -> Page[AccountTemplate]:
        items, token = self._table.query_page(
            partition_attribute=PARTITION_KEY,
            partition_value=business_pk(business_id),
            sort_attribute=SORT_KEY,
            sort_prefix=template_prefix(account_id),
            limit=limit,
            next_token=next_token,
        )
        return Page[AccountTemplate](items=[_to_template(item) for item in items], next_token=token)

    def all(self, business_id: str, account_id: str) -> builtins.list[AccountTemplate]:
        found: builtins.list[AccountTemplate] = []
        token: str | None = None
        while True:
            page = self.list(business_id, account_id, _QUERY_PAGE, token)
            found.extend(page.items)
            token = page.next_token
            if token is None:
                return found

    def replace(self, business_id: str, put: Sequence[AccountTemplate], remove: Sequence[AccountTemplate]) -> None:
        """Writes the templates that changed and deletes those the provider no longer lists (BatchWriteItem: a sync
        that finds nothing new writes nothing)."""
        deletes = [(business_pk(business_id), template_sk(t.account_id, t.name, t.language)) for t in remove]
        self._table.batch_write([_to_item(business_id, template) for template in put], deletes)

    def record_status(self, business_id: str, template: AccountTemplate) -> bool:
        """A template webhook's decision, unless the stored item is newer (a later sync or event won). The category
        and components a sync stored are kept; an unknown template is stored with what the event says."""
        values: dict[str, Any] = {
            ":status": {"S": template.status.value},
            ":at": {"S": to_jsonable_python(template.updated_at)},
            ":name": {"S": template.name},
            ":language": {"S": template.language},
            ":account": {"S": template.account_id},
            ":type": {"S": "Template"},
        }
        sets = [
            "#status = :status",
            "updated_at = :at",
            "#name = :name",
            "#language = :language",
            "account_id = :account",
            "#type = :type",
        ]
        removes: list[str] = []
        if template.reason is not None:
            sets.append("reason = :reason")
            values[":reason"] = {"S": template.reason}
        else:
            removes.append("reason")
        if template.provider_template_id is not None:
            sets.append("provider_template_id = :template_id")
            values[":template_id"] = {"S": template.provider_template_id}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key={
                    PARTITION_KEY: {"S": business_pk(business_id)},
                    SORT_KEY: {"S": template_sk(template.account_id, template.name, template.language)},
                },
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(PK) OR updated_at <= :at",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#name": "name",
                    "#language": "language",
                    "#type": "type",
                },
                ExpressionAttributeValues=values,
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def delete_all(self, business_id: str, account_id: str) -> None:
        self.replace(business_id, (), self.all(business_id, account_id))


def _to_item(business_id: str, template: AccountTemplate) -> dict[str, Any]:
    return to_attributes(
        {
            PARTITION_KEY: business_pk(business_id),
            SORT_KEY: template_sk(template.account_id, template.name, template.language),
            "type": "Template",
            "account_id": template.account_id,
            "name": template.name,
            "language": template.language,
            "status": template.status.value,
            "category": template.category.value if template.category else None,
            "updated_at": to_jsonable_python(template.updated_at),
            "provider_template_id": template.provider_template_id,
            # As a JSON string: Meta's components nest deeply and DynamoDB would bill a map's structure the same.
            "components": json.dumps(list(template.components), separators=(",", ":")) if template.components else None,
            "reason": template.reason,
        }
    )


def _to_template(item: Item) -> AccountTemplate:
    status = item.get("status", "UNKNOWN")
    category = item.get("category")
    components = item.get("components")
    return AccountTemplate(
        account_id=item["account_id"],
        name=item["name"],
        language=item["language"],
        status=TemplateStatus(status) if status in TemplateStatus.__members__ else TemplateStatus.UNKNOWN,
        category=TemplateCategory(category) if category in {c.value for c in TemplateCategory} else None,
        updated_at=datetime.fromisoformat(item["updated_at"]),
        provider_template_id=item.get("provider_template_id"),
        components=tuple(json.loads(components)) if components else (),
        reason=item.get("reason"),
    )
