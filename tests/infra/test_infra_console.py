"""The web console in AWS: a private bucket behind CloudFront (OAC), security headers, CORS for its origin only,
and the API's URL written into the deployed files."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_helpers import logical_id, of_type, only

from infra.capabilities.console import content_security_policy, index_with_api_origin
from infra.paths import CONSOLE_DIR
from infra.stack import WabacastStack

Resources = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def ids(stack: WabacastStack) -> dict[str, str]:
    return {
        "bucket": logical_id(stack, stack.console.bucket),
        "logs": logical_id(stack, stack.console.access_logs),
        "distribution": logical_id(stack, stack.console.distribution),
        "headers": logical_id(stack, stack.console.headers_policy),
        "http_api": logical_id(stack, stack.api.http_api),
    }


def test_the_console_bucket_is_private_encrypted_and_logged(resources: Resources, ids: dict[str, str]) -> None:
    # GIVEN / WHEN the console's bucket
    bucket = resources[ids["bucket"]]["Properties"]

    # THEN nothing in it can be made public, it is encrypted, and its accesses are logged to the log bucket
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": ids["logs"]}
    assert "WebsiteConfiguration" not in bucket


def test_only_this_distribution_reads_the_bucket_and_only_over_tls(resources: Resources, ids: dict[str, str]) -> None:
    # GIVEN the console bucket's policy
    (policy,) = [
        p["Properties"]
        for p in of_type(resources, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": ids["bucket"]}
    ]
    statements = policy["PolicyDocument"]["Statement"]

    # WHEN looking at what it allows
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]

    # THEN CloudFront may read objects on behalf of this one distribution (origin access control), nobody else
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source_arn = json.dumps(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert f'{{"Ref": "{ids["distribution"]}"}}' in source_arn
    # AND plain HTTP is refused
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_distribution_uses_origin_access_control_https_and_the_security_headers(
    resources: Resources, ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the distribution
    config = resources[ids["distribution"]]["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    behavior = config["DefaultCacheBehavior"]
    _, access_control = only(resources, "AWS::CloudFront::OriginAccessControl")

    # THEN it reads the bucket with OAC (no legacy origin access identity), serves index.html at the root, redirects
    # HTTP to HTTPS, only answers GET/HEAD, and every answer gets the security headers; it logs its requests
    assert origin["DomainName"] == {"Fn::GetAtt": [ids["bucket"], "RegionalDomainName"]}
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert access_control["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert config["DefaultRootObject"] == "index.html"
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": ids["headers"]}
    assert config["Logging"]["Bucket"] == {"Fn::GetAtt": [ids["logs"], "RegionalDomainName"]}


def test_security_headers_forbid_foreign_scripts_framing_and_sniffing(
    resources: Resources, ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the response headers policy
    headers = resources[ids["headers"]]["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = "".join(
        part if isinstance(part, str) else "{" + json.dumps(part) + "}"
        for part in headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Join"][1]
    )

    # THEN scripts and styles come from the console only, API calls go to API Gateway of this region, no framing
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "connect-src 'self' https://*.execute-api." in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert headers["ContentSecurityPolicy"]["Override"] is True
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000


def test_the_api_allows_cross_origin_calls_from_the_console_only(resources: Resources, ids: dict[str, str]) -> None:
    # GIVEN / WHEN the HTTP API's CORS configuration
    cors = resources[ids["http_api"]]["Properties"]["CorsConfiguration"]

    # THEN the one allowed origin is the distribution's, with the key header and JSON bodies, no credentials mode
    assert cors["AllowOrigins"] == [
        {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [ids["distribution"], "DomainName"]}]]}
    ]
    assert sorted(cors["AllowHeaders"]) == ["authorization", "content-type"]
    assert sorted(cors["AllowMethods"]) == ["DELETE", "GET", "POST", "PUT"]
    assert "AllowCredentials" not in cors


def test_deployment_writes_the_api_url_into_config_and_invalidates_the_cache(
    resources: Resources, ids: dict[str, str]
) -> None:
    # GIVEN the console's BucketDeployment
    ((_, deployment),) = of_type(resources, "Custom::CDKBucketDeployment").items()
    properties = deployment["Properties"]

    # WHEN looking at its sources' deploy-time values
    markers = json.dumps(properties["SourceMarkers"])

    # THEN the files go to the console bucket, config.json and index.html get the API's URL and origin, and the
    # distribution's cache is invalidated
    assert properties["DestinationBucketName"] == {"Ref": ids["bucket"]}
    assert len(properties["SourceObjectKeys"]) == 3  # console/ (less the two generated files), index.html, config.json
    assert f'{{"Ref": "{ids["http_api"]}"}}' in markers  # config.json: the stage URL
    assert f'{{"Fn::GetAtt": ["{ids["http_api"]}", "ApiEndpoint"]}}' in markers  # index.html: the origin
    assert properties["DistributionId"] == {"Ref": ids["distribution"]}
    assert properties["DistributionPaths"] == ["/*"]
    assert properties["Prune"] is True


def test_the_stack_outputs_the_console_url(template: Any, ids: dict[str, str]) -> None:
    outputs = template.to_json()["Outputs"]
    assert outputs["ConsoleUrl"]["Value"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [ids["distribution"], "DomainName"]}, "/"]]
    }


def test_index_gets_a_csp_meta_tag_naming_the_api_before_any_script() -> None:
    # GIVEN the console's real index.html
    original = (CONSOLE_DIR / "index.html").read_text()

    # WHEN the API's origin is written into it
    page = index_with_api_origin(original, "https://abc123.execute-api.eu-west-1.amazonaws.com")

    # THEN a CSP meta tag allowing exactly that origin comes right after the charset, before the module script
    tag_at = page.index('<meta http-equiv="Content-Security-Policy"')
    assert page.index('<meta charset="utf-8">') < tag_at < page.index("<script")
    assert "connect-src 'self' https://abc123.execute-api.eu-west-1.amazonaws.com;" in page
    assert "frame-ancestors" not in page  # ignored in a meta tag; the header sets it
    assert page.replace(page[tag_at : page.index(">", tag_at) + 1], "").replace("\n  \n", "\n") == original


def test_index_without_a_charset_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="charset"):
        index_with_api_origin("<html><head></head></html>", "https://api.example")


def test_the_policy_names_what_it_is_given() -> None:
    assert "connect-src 'self' https://x.example;" in content_security_policy("https://x.example")
