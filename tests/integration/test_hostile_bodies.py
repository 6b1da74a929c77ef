"""Bodies built to cost: decoding is bounded on both routes that take compressed bodies (the SDK
API's /v1/batch and /raindrop/v1/), a stranger's body is not decoded before the stranger is
refused, a compressed body where only text arrives (the webhook API's /segment) is refused
unread, and every malformed body is a 400 or a 415, never a 502."""

from __future__ import annotations

import gzip
import json

import pytest

from segment_raindrop.core.content_encoding import MAX_GZIP_MEMBERS
from segment_raindrop.core.request_auth import sign
from segment_raindrop_tools.local.receiver import RaindropReceiver
from tests.conftest import AwsEnv
from tests.integration.conftest import Invoke
from tests.support.auth import bearer
from tests.support.mirror import MirrorEnv, env
from tests.support.queues import fast, fresh_runtimes

pytestmark = pytest.mark.usefixtures("fast", "fresh_runtimes")
__all__ = ["env", "fast", "fresh_runtimes"]  # fixtures, imported for use by name

# 233,472 empty gzip members, gzip-compressed again: about 11 KB on the wire. Each member is a
# decoder of its own, so reading them all took most of a second of CPU.
EMPTY_MEMBERS = gzip.compress(gzip.compress(b"") * 233_472, mtime=0)
STACKED = {"Content-Encoding": "gzip, gzip"}
CORRUPT = b"\x1f\x8b\x08\x00" + b"not really gzip" * 4
# Where Segment's libraries post, on the SDK API: bodies arrive intact, compressed or not.
LIBRARIES = "/v1/batch"


def test_the_many_members_body_is_small_on_the_wire() -> None:
    assert len(EMPTY_MEMBERS) < 12_000


def test_the_webhook_refuses_a_body_of_many_gzip_members(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    answer = invoke_webhook(EMPTY_MEMBERS, headers=STACKED | bearer(aws), path=LIBRARIES)
    assert answer.status == 400
    assert answer.body == {"error": f"body has more than {MAX_GZIP_MEMBERS} gzip members"}
    assert receiver.requests == []


def test_a_signed_body_of_many_members_is_refused_when_decoded_for_its_signature(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    headers = STACKED | {"X-Signature": sign(b"[]", aws.segment_shared_secret)}
    assert invoke_webhook(EMPTY_MEMBERS, headers=headers, path=LIBRARIES).status == 400
    assert receiver.requests == []


def test_a_strangers_body_is_not_decoded(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    # A wrong token decides without the body: 401, whatever the body would have cost.
    for body in (EMPTY_MEMBERS, CORRUPT):
        answer = invoke_webhook(body, headers=STACKED | bearer("not-the-token"), path=LIBRARIES)
        assert answer.status == 401, answer.body
    assert receiver.requests == []


def test_a_corrupt_compressed_body_is_a_400_on_the_webhook(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke
) -> None:
    gzipped = {"Content-Encoding": "gzip"} | bearer(aws)
    answer = invoke_webhook(CORRUPT, headers=gzipped, path=LIBRARIES)
    assert answer.status == 400
    assert answer.body == {"error": "body is not valid gzip data"}
    deflate = {"Content-Encoding": "deflate"} | bearer(aws)
    assert invoke_webhook(b"\x00\xff" * 8, headers=deflate, path=LIBRARIES).status == 400


@pytest.mark.parametrize("body", [EMPTY_MEMBERS, CORRUPT, gzip.compress(b"[]")])
def test_a_compressed_body_on_the_webhook_api_is_refused_unread(
    aws: AwsEnv, receiver: RaindropReceiver, invoke_webhook: Invoke, body: bytes
) -> None:
    # /segment has no binary media types: API Gateway hands the body over as text, which no
    # compressed body survives. 415, naming where compressed bodies go.
    answer = invoke_webhook(body, headers={"Content-Encoding": "gzip"} | bearer(aws))
    assert answer.status == 415
    assert "SegmentLibraryHost" in answer.body["error"]
    assert receiver.requests == []


def test_the_sdk_route_refuses_the_same_bodies_with_400(env: MirrorEnv) -> None:
    members = env.post("events/track", None, raw=EMPTY_MEMBERS, headers=STACKED)
    assert members.status == 400
    assert members.body == {
        "error": {"code": 400, "message": f"body has more than {MAX_GZIP_MEMBERS} gzip members"}
    }
    corrupt = env.post("events/track", None, raw=CORRUPT, headers={"Content-Encoding": "gzip"})
    assert corrupt.status == 400
    assert corrupt.body["error"]["message"] == "body is not valid gzip data"
    assert env.receiver.requests == []
    assert env.segment.accepted_events() == []


def test_the_sdk_route_refuses_a_stranger_before_decoding(env: MirrorEnv) -> None:
    answer = env.post("events/track", None, raw=CORRUPT, key="not-the-key", headers=STACKED)
    assert answer.status == 401
    assert env.receiver.requests == []


def test_a_compressed_sdk_request_still_goes_through(env: MirrorEnv) -> None:
    items = [{"event_id": "ev-1", "user_id": "u", "event": "ai_interaction",
              "timestamp": "2026-12-06T08:00:00Z", "ai_data": {"output": "hello"}}]  # fmt: skip
    body = gzip.compress(json.dumps(items).encode())
    answer = env.post("events/track", None, raw=body, headers={"Content-Encoding": "gzip"})
    assert answer.status == 200, answer.body
    assert [item["event_id"] for item in env.receiver.accepted("events/track")] == ["ev-1"]
