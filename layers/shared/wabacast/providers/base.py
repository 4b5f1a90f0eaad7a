"""The provider interface the sender uses, and the error it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wabacast.domain.jobs import ErrorClass

if TYPE_CHECKING:
    from wabacast.domain.models import TemplateButton, TemplateHeader


@dataclass(frozen=True)
class OutboundMessage:
    """One template message, rendered: everything a provider needs, nothing it must look up."""

    job_id: str
    to: str  # E.164
    from_number: str  # the account's number, E.164
    template_name: str
    language: str
    # Keys "1", "2", ... are positional body parameters (sent in numeric order); other keys are named parameters.
    variables: dict[str, str] = field(default_factory=dict)
    content_sid: str | None = None  # Twilio Content SID
    # The queue template's header and button parameters (Meta; a Twilio Content template carries its own).
    header: TemplateHeader | None = None
    buttons: tuple[TemplateButton, ...] = ()
    # "<queue id>/<job id>": the provider echoes it in its status webhooks (Meta biz_opaque_callback_data, the
    # query of Twilio's StatusCallback URL), so a status finds its job with one keyed read (decision 26).
    callback_reference: str | None = None


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str


class ProviderError(Exception):
    """A send that did not succeed, classified once here so the sender only reads `error_class`."""

    def __init__(self, code: str, message: str, error_class: ErrorClass, *, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.error_class = error_class
        self.http_status = http_status


class Provider(Protocol):
    def send(self, message: OutboundMessage) -> SendReceipt:
        """Send or raise ProviderError. Must not raise anything else for a provider-side failure."""
        ...
