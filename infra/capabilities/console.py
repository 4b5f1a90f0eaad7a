"""Console capability: the web console (console/) in a private S3 bucket behind CloudFront.

- The bucket blocks all public access; CloudFront reads it through origin access control (OAC), and the bucket
  policy allows that one distribution only.
- `publish()` uploads the files at deploy time (a BucketDeployment) with two generated ones: `config.json`, which
  carries the API's URL, and `index.html`, whose Content-Security-Policy meta tag names the API's exact origin.
- CloudFront adds the security headers (CSP, HSTS, nosniff, frame and referrer policies) to every answer. The
  header's `connect-src` can only name API Gateway endpoints of this region, not the API itself: the API's CORS
  names the distribution's domain, so a header policy naming the API would be a CloudFormation dependency cycle
  (distribution -> policy -> API -> distribution). The meta tag, written after both exist, narrows it to the API;
  browsers enforce both policies.
- The API's CORS allows this distribution's origin only (infra/capabilities/api.py, `allowed_origins`).
"""

from __future__ import annotations

import html
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.capabilities.names import Names
from infra.nag import acknowledge

CONFIG_FILE = "config.json"
INDEX_FILE = "index.html"
CHARSET_TAG = '<meta charset="utf-8">'
ACCESS_LOG_DAYS = 90
# The wildcard actions CDK grants the BucketDeployment function on the assets bucket and the console bucket.
DEPLOYMENT_S3_ACTION_WILDCARDS = ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*")
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"


def content_security_policy(connect_src: str) -> str:
    """The console's policy: its own scripts and styles only, API calls to `connect_src`, no framing."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {connect_src}; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def index_with_api_origin(index_html: str, api_origin: str) -> str:
    """index.html with a CSP meta tag right after the charset, before any script, that allows `api_origin`."""
    if CHARSET_TAG not in index_html:
        raise ValueError(f"{INDEX_FILE} must declare {CHARSET_TAG} (the CSP meta tag goes right after it)")
    # frame-ancestors is not honoured in a meta tag: CloudFront's header sets it.
    policy = content_security_policy(api_origin).replace("; frame-ancestors 'none'", "")
    tag = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy, quote=False)}">'
    return index_html.replace(CHARSET_TAG, f"{CHARSET_TAG}\n  {tag}", 1)


class Console(Construct):
    """Bucket, access logs, security headers and distribution; `publish()` adds the files once the API exists."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        console_dir: Path,
        log_retention: logs.RetentionDays,
        names: Names,
    ) -> None:
        """The buckets' and the headers policy's physical names are generated from the stack's name, which carries
        the environment (`names`); the comments name it too, since CloudFront lists distributions by comment."""
        super().__init__(scope, construct_id)
        if not (console_dir / INDEX_FILE).is_file():
            raise ValueError(f"The console folder {console_dir} has no {INDEX_FILE}")
        self.console_dir = console_dir
        self.log_retention = log_retention

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            # CloudFront's standard logs are delivered with an ACL, which needs ACLs enabled on the bucket.
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(ACCESS_LOG_DAYS))],
        )
        self.bucket = s3.Bucket(
            self,
            "SiteBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="site/",
        )

        self.headers_policy = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment=f"{names.prefix} console: CSP, HSTS, nosniff, no framing, no referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(
                        f"https://*.execute-api.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"
                    ),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365), include_subdomains=True, override=True
                ),
            ),
        )

        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{names.prefix} console",
            default_root_object=INDEX_FILE,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers_policy,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.access_logs,
            log_file_prefix="cloudfront/",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "Operators of a business may sign in from any country; the console serves only static files and "
            "every request for data goes to the API with an API key.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "The distribution serves only the console's static files (GET/HEAD, cached); there is no data or "
            "request body to inspect. The API behind it has its own stage throttling and API-key authorizer.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The console uses the default *.cloudfront.net certificate, for which CloudFront does not let the "
            "minimum viewer TLS version be set; a custom domain with an ACM certificate (TLSv1.2_2021) lifts this.",
        )

    @property
    def origin(self) -> str:
        """The console's origin, as browsers send it in the Origin header (the API's CORS allows it)."""
        return f"https://{self.distribution.distribution_domain_name}"

    def publish(self, *, api_url: str, api_origin: str) -> s3deploy.BucketDeployment:
        """Upload console/ with config.json (the API's URL) and index.html (CSP naming the API) at deploy time."""
        index_html = (self.console_dir / INDEX_FILE).read_text(encoding="utf-8")
        deployment = s3deploy.BucketDeployment(
            self,
            "Files",
            sources=[
                s3deploy.Source.asset(str(self.console_dir), exclude=[INDEX_FILE, CONFIG_FILE]),
                s3deploy.Source.data(INDEX_FILE, index_with_api_origin(index_html, api_origin)),
                s3deploy.Source.json_data(CONFIG_FILE, {"apiUrl": api_url}),
            ],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
            log_group=logs.LogGroup(self, "FilesDeploymentLogs", retention=self.log_retention),
        )
        self._acknowledge_deployment_function(deployment)
        self.files = deployment
        return deployment

    def _acknowledge_deployment_function(self, deployment: s3deploy.BucketDeployment) -> None:
        """The BucketDeployment's function is CDK's (a singleton at stack level): its runtime and policies too."""
        acknowledge(
            deployment.handler_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's BucketDeployment function (runs only during deployments) comes with the AWS managed basic "
            "execution policy for its logs.",
        )
        stack = cdk.Stack.of(self)
        bucket_logical_id = stack.resolve(self.bucket.node.default_child.logical_id)  # type: ignore[union-attr]
        qualifier = (
            stack.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT) or cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
        )
        assets_bucket_objects = f"arn:<AWS::Partition>:s3:::cdk-{qualifier}-assets-<AWS::AccountId>-<AWS::Region>/*"
        for finding in (
            *(f"Action::{action}" for action in DEPLOYMENT_S3_ACTION_WILDCARDS),
            f"Resource::{assets_bucket_objects}",
            f"Resource::<{bucket_logical_id}.Arn>/*",
            "Resource::*",
        ):
            acknowledge(
                deployment.handler_role,
                f"AwsSolutions-IAM5[{finding}]",
                "CDK's BucketDeployment function (runs only during deployments) copies the console's files from the "
                "CDK assets bucket into the console bucket and invalidates the distribution: CDK grants it "
                "s3:GetObject*/GetBucket*/List* on the assets bucket, s3:GetObject*/List*/DeleteObject*/Abort* and "
                "puts on the console bucket's objects, and cloudfront:CreateInvalidation/GetInvalidation, which "
                "support no resource-level permissions (Resource '*').",
            )
        for child in stack.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                acknowledge(
                    child,
                    "AwsSolutions-L1",
                    "The runtime of CDK's BucketDeployment function is chosen by aws-cdk-lib and moves with it; "
                    "it runs only during deployments.",
                )
