"""The Meta template payload: recipient digits, positional and named variables, no empty components."""

from __future__ import annotations

from wabacast.providers.base import OutboundMessage
from wabacast.providers.meta import build_template_payload, template_parameters


def message(**fields: object) -> OutboundMessage:
    values: dict[str, object] = {
        "job_id": "job_1",
        "to": "+34600000001",
        "from_number": "+34900000000",
        "template_name": "order_update",
        "language": "es_ES",
    }
    values.update(fields)
    return OutboundMessage(**values)  # type: ignore[arg-type]


def test_a_template_without_variables_has_no_components() -> None:
    # GIVEN a message with no variables
    # WHEN its payload is built
    # THEN it is a Meta template send to the digits of the number, without "components"
    payload = build_template_payload(message())

    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "34600000001",
        "type": "template",
        "template": {"name": "order_update", "language": {"code": "es_ES"}},
    }


def test_positional_variables_are_sent_in_numeric_order() -> None:
    # GIVEN positional variables whose string order differs from their numeric order
    # WHEN the payload is built
    # THEN the body parameters follow 1, 2, ..., 10
    variables = {str(n): f"v{n}" for n in (10, 2, 1, 3, 9, 4, 5, 6, 7, 8)}
    payload = build_template_payload(message(variables=variables))

    components = payload["template"]["components"]
    assert [component["type"] for component in components] == ["body"]
    assert components[0]["parameters"] == [{"type": "text", "text": f"v{n}"} for n in range(1, 11)]


def test_named_variables_carry_their_parameter_name() -> None:
    # GIVEN named variables
    # WHEN the payload is built
    # THEN each parameter names itself
    payload = build_template_payload(message(variables={"first_name": "Ana", "order_id": "A-17"}))

    assert payload["template"]["components"] == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                {"type": "text", "parameter_name": "order_id", "text": "A-17"},
            ],
        }
    ]


def test_mixed_variables_put_positional_ones_first() -> None:
    # GIVEN positional and named variables together (Meta would refuse the mix; we keep a stable order)
    # WHEN the parameters are built
    # THEN positional ones come first in numeric order, named ones after
    assert template_parameters({"name": "Ana", "2": "b", "1": "a"}) == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
        {"type": "text", "parameter_name": "name", "text": "Ana"},
    ]


def test_values_are_sent_as_they_are() -> None:
    # GIVEN a value with unicode, quotes and braces
    # WHEN the payload is built
    # THEN the text is untouched (JSON encoding is httpx's job)
    value = 'Olá "Ana" {ok} ✓'
    payload = build_template_payload(message(variables={"1": value}))

    assert payload["template"]["components"][0]["parameters"][0]["text"] == value


def test_a_number_without_plus_is_kept() -> None:
    # GIVEN a recipient already in digits
    # WHEN the payload is built
    # THEN "to" is those digits
    assert build_template_payload(message(to="34600000001"))["to"] == "34600000001"


def test_header_and_buttons_are_sent_as_meta_documents_them() -> None:
    # GIVEN a template with a document header, body variables and two buttons given out of order
    from wabacast.domain.models import TemplateButton, TemplateHeader

    header = TemplateHeader.model_validate(
        {"type": "document", "link": "https://cdn.example.com/invoice.pdf", "filename": "invoice.pdf"}
    )
    buttons = (
        TemplateButton.model_validate({"subType": "url", "index": 1, "urlSuffix": "order/17"}),
        TemplateButton.model_validate({"subType": "quick_reply", "index": 0, "payload": "STOP_PROMOS"}),
    )
    # WHEN the payload is built
    payload = build_template_payload(message(variables={"1": "Ana"}, header=header, buttons=buttons))
    # THEN the components are header, body, then the buttons by index, in Meta's shapes (index as a string)
    assert payload["template"]["components"] == [
        {
            "type": "header",
            "parameters": [
                {
                    "type": "document",
                    "document": {"link": "https://cdn.example.com/invoice.pdf", "filename": "invoice.pdf"},
                }
            ],
        },
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}],
        },
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "order/17"}]},
    ]


def test_each_header_type_has_its_parameter_shape() -> None:
    # GIVEN a text, an image and a video header
    from wabacast.domain.models import TemplateHeader

    cases = {
        "text": ({"type": "text", "text": "Order 17"}, {"type": "text", "text": "Order 17"}),
        "image": (
            {"type": "image", "link": "https://cdn.example.com/a.png"},
            {"type": "image", "image": {"link": "https://cdn.example.com/a.png"}},
        ),
        "video": (
            {"type": "video", "link": "https://cdn.example.com/a.mp4"},
            {"type": "video", "video": {"link": "https://cdn.example.com/a.mp4"}},
        ),
    }
    for kind, (given, expected) in cases.items():
        # WHEN a message with that header alone is built
        payload = build_template_payload(message(header=TemplateHeader.model_validate(given)))
        # THEN its only component is the header with that one parameter
        assert payload["template"]["components"] == [{"type": "header", "parameters": [expected]}], kind


def test_the_job_reference_travels_as_callback_data_for_status_webhooks() -> None:
    # GIVEN a message carrying its job reference
    # WHEN its payload is built
    payload = build_template_payload(message(callback_reference="q_1/job_1"))
    # THEN Meta gets it as biz_opaque_callback_data (echoed in every status webhook); without one, no field
    assert payload["biz_opaque_callback_data"] == "q_1/job_1"
    assert "biz_opaque_callback_data" not in build_template_payload(message())
