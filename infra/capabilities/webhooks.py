"""Webhooks capability: the providers' public routes into the API function, and the stack's webhook secret.

  GET, POST /api/webhooks/meta              -> API function, no authorizer (Meta's handshake; signed statuses)
  POST      /api/webhooks/twilio/{accountId} -> API function, no authorizer (signed status callbacks)

These routes carry a provider signature instead of an API key: the function checks it (wabacast.logic.webhooks).
The stack's webhook secret holds the Meta verify token (generated here) and, optionally, a Meta app secret the
operator adds (docs/operations.md). Senders get the API's URL, so Twilio sends ask for status callbacks.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.capabilities.api import Api
from infra.capabilities.delivery import Delivery
from infra.nag import acknowledge

META_WEBHOOK_ROUTE = "/api/webhooks/meta"
TWILIO_WEBHOOK_ROUTE = "/api/webhooks/twilio/{accountId}"


class Webhooks(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, api: Api, delivery: Delivery) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            description="wabacast webhooks: metaVerifyToken (generated), optional metaAppSecret",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 - an empty JSON template, not a password
                generate_string_key="metaVerifyToken",
                exclude_punctuation=True,
                password_length=40,
            ),
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "The Meta verify token is only compared during the subscription handshake and is entered by hand in "
            "Meta's app dashboard; an automatic rotation would break the subscription. The operator replaces it "
            "(and the optional app secret) as docs/operations.md describes.",
        )
        # Read only (GetSecretValue, DescribeSecret) and only this secret.
        self.secret.grant_read(api.function)
        api.function.add_environment("WEBHOOK_SECRET_NAME", self.secret.secret_name)
        delivery.sender.add_environment("PUBLIC_BASE_URL", api.url.rstrip("/"))

        routes = [
            *api.http_api.add_routes(
                path=META_WEBHOOK_ROUTE,
                methods=[apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST],
                integration=api.integration,
            ),
            *api.http_api.add_routes(
                path=TWILIO_WEBHOOK_ROUTE, methods=[apigwv2.HttpMethod.POST], integration=api.integration
            ),
        ]
        for route in routes:
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "Provider webhooks: Meta and Twilio cannot send an API key. Every request is verified by its "
                "signature (X-Hub-Signature-256, X-Twilio-Signature) against the account's secret before anything "
                "is read or written, and refused with 403 otherwise.",
            )
        cdk.CfnOutput(
            self,
            "WebhookSecretName",
            value=self.secret.secret_name,
            description="The webhook secret: metaVerifyToken for Meta's callback setup, optional metaAppSecret",
        )
