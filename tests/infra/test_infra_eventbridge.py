"""The EventBridge intake in the synthesised stack: `segmentEventSource` gives the bus associated
with each partner source, a rule keeping what the mapping forwards, the intake queue (encrypted,
TLS only, its own dead-letter queue) that only those rules may send to, and the consumer reading
it in batches; `webhook=false` leaves no public endpoint. cdk-nag runs in every synth (a finding
fails it), and cfn-lint is run on these variants too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions
from cfnlint.api import lint  # type: ignore[import-untyped]

from infra.config import ConfigError, config_from_context
from segment_raindrop.core.config import MappingConfig
from segment_raindrop.core.contract import EVENTBRIDGE_MAX_RECEIVES, StackOutput
from segment_raindrop.core.eventbridge import event_pattern
from tests.infra.support import context_with, only, resources, synth

SOURCE = "aws.partner/segment.com/abc"
OTHER = "aws.partner/segment.com/def"
EVENTBRIDGE_HANDLER = "segment_raindrop.handlers.eventbridge.handler"
REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture(scope="module")
def intake_template() -> assertions.Template:
    return synth(segmentEventSource=SOURCE)


@pytest.fixture(scope="module")
def only_eventbridge() -> assertions.Template:
    return synth(
        segmentEventSource=f"{SOURCE}, {OTHER}=team-b",
        webhook="false",
        segmentEventBatchSize="500",
        segmentEventBatchWindowSeconds="10",
        forwardEventNames='["Prompt Sent"]',
        forwardIdentify="false",
    )


def _ref(value: dict[str, Any]) -> str:
    return str(value.get("Ref") or value["Fn::GetAtt"][0])


def test_the_bus_is_associated_with_the_partner_source(
    intake_template: assertions.Template,
) -> None:
    _, bus = only(intake_template, "AWS::Events::EventBus")

    assert bus["Properties"]["EventSourceName"] == SOURCE
    assert bus["Properties"]["Name"] == SOURCE


def test_the_rule_keeps_what_the_mapping_forwards_and_targets_the_queue(
    intake_template: assertions.Template,
) -> None:
    bus_id, _ = only(intake_template, "AWS::Events::EventBus")
    _, rule = only(intake_template, "AWS::Events::Rule")
    properties = rule["Properties"]

    assert properties["EventPattern"] == event_pattern(MappingConfig(), [SOURCE])
    assert _ref(properties["EventBusName"]) == bus_id
    (target,) = properties["Targets"]
    queue_id, _ = _intake_queue(intake_template)
    assert _ref(target["Arn"]) == queue_id
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 24 * 3600
    assert _ref(target["DeadLetterConfig"]["Arn"]) == _intake_dlq(intake_template)


def _intake_queue(template: assertions.Template) -> tuple[str, Any]:
    found = [
        (logical_id, queue)
        for logical_id, queue in resources(template, "AWS::SQS::Queue").items()
        if logical_id.startswith("SegmentEventsQueue")
    ]
    assert len(found) == 1
    return found[0]


def _intake_dlq(template: assertions.Template) -> str:
    _, queue = _intake_queue(template)
    return _ref(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])


def test_the_queue_is_encrypted_and_redriven_to_its_own_dead_letter_queue(
    intake_template: assertions.Template,
) -> None:
    _, queue = _intake_queue(intake_template)
    properties = queue["Properties"]

    assert properties["SqsManagedSseEnabled"] is True
    assert properties["RedrivePolicy"]["maxReceiveCount"] == EVENTBRIDGE_MAX_RECEIVES
    dlq = resources(intake_template, "AWS::SQS::Queue")[_intake_dlq(intake_template)]
    assert dlq["Properties"]["SqsManagedSseEnabled"] is True


def test_only_the_rule_may_send_and_only_over_tls(intake_template: assertions.Template) -> None:
    queue_id, _ = _intake_queue(intake_template)
    rule_id, _ = only(intake_template, "AWS::Events::Rule")
    policies = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in resources(intake_template, "AWS::SQS::QueuePolicy").values()
        if [_ref(q) for q in policy["Properties"]["Queues"]] == [queue_id]
    ]
    (statements,) = policies
    deny_plain = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_plain[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert _ref(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == rule_id


def test_the_consumer_reads_the_queue_in_batches_with_partial_failures(
    intake_template: assertions.Template,
) -> None:
    function_id, function = only(
        intake_template, "AWS::Lambda::Function", Handler=EVENTBRIDGE_HANDLER
    )
    queue_id, _ = _intake_queue(intake_template)
    (mapping,) = [
        m
        for m in resources(intake_template, "AWS::Lambda::EventSourceMapping").values()
        if _ref(m["Properties"]["EventSourceArn"]) == queue_id
    ]
    properties = mapping["Properties"]

    assert _ref(properties["FunctionName"]) == function_id
    assert properties["BatchSize"] == 100
    assert properties["MaximumBatchingWindowInSeconds"] == 2
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    variables = function["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["SEGMENT_EVENT_SOURCES"]) == {SOURCE: None}


def test_the_default_stack_has_no_intake(template: assertions.Template) -> None:
    assert resources(template, "AWS::Events::EventBus") == {}
    assert resources(template, "AWS::Events::Rule") == {}
    assert (
        resources(template, "AWS::Lambda::Function").keys()
        & {"FunctionsEventBridge"}  # no consumer either
    ) == set()
    assert StackOutput.SEGMENT_EVENTS_QUEUE_URL.value not in template.to_json()["Outputs"]


def test_without_the_webhook_there_is_no_public_endpoint(
    only_eventbridge: assertions.Template,
) -> None:
    assert resources(only_eventbridge, "AWS::ApiGateway::RestApi") == {}
    handlers = {
        f["Properties"]["Handler"]
        for f in resources(only_eventbridge, "AWS::Lambda::Function").values()
        if "Handler" in f["Properties"]
    }
    assert "segment_raindrop.handlers.webhook.handler" not in handlers
    assert "segment_raindrop.handlers.raindrop_sdk.handler" not in handlers
    assert EVENTBRIDGE_HANDLER in handlers
    outputs = only_eventbridge.to_json()["Outputs"]
    assert StackOutput.WEBHOOK_URL.value not in outputs
    assert StackOutput.SEGMENT_EVENTS_QUEUE_URL.value in outputs
    # No mirror function: `status` must not ask for a Segment write key nothing uses.
    assert outputs[StackOutput.MIRROR_TO_SEGMENT.value]["Value"] == "false"


def test_several_sources_each_get_a_bus_and_a_rule_and_their_projects(
    only_eventbridge: assertions.Template,
) -> None:
    buses = resources(only_eventbridge, "AWS::Events::EventBus")
    assert sorted(b["Properties"]["EventSourceName"] for b in buses.values()) == [SOURCE, OTHER]
    mapping = MappingConfig(forward_event_names=frozenset({"Prompt Sent"}), forward_identify=False)
    patterns = sorted(
        (
            r["Properties"]["EventPattern"]
            for r in resources(only_eventbridge, "AWS::Events::Rule").values()
        ),
        key=lambda p: p["source"],
    )
    assert patterns == [event_pattern(mapping, [SOURCE]), event_pattern(mapping, [OTHER])]
    _, function = only(only_eventbridge, "AWS::Lambda::Function", Handler=EVENTBRIDGE_HANDLER)
    variables = function["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["SEGMENT_EVENT_SOURCES"]) == {SOURCE: None, OTHER: "team-b"}


@pytest.mark.parametrize("fixture", ["intake_template", "only_eventbridge"])
def test_the_variants_are_lint_clean(fixture: str, request: pytest.FixtureRequest) -> None:
    template: assertions.Template = request.getfixturevalue(fixture)
    assert [str(m) for m in lint(json.dumps(template.to_json()), regions=REGIONS)] == []


@pytest.mark.parametrize(
    ("context", "problem"),
    [
        ({"segmentEventSource": "aws.partner/segment/abc"}, "segmentEventSource: "),
        ({"segmentEventSource": f"{SOURCE}=Team B"}, "segmentEventSource: "),
        ({"segmentEventSource": f"{SOURCE},,{OTHER}"}, "segmentEventSource: "),
        ({"segmentEventSource": f"{SOURCE},{SOURCE}"}, "given twice"),
        ({"webhook": "false"}, "webhook=false needs segmentEventSource"),
        (
            {"segmentEventSource": SOURCE, "segmentEventBatchWindowSeconds": "0"},
            "segmentEventBatchSize above 10 needs segmentEventBatchWindowSeconds",
        ),
        ({"segmentEventBatchSize": "0"}, "segmentEventBatchSize: "),
        (
            {"segmentEventSource": f"{SOURCE}=team-b", "raindropProjects": '["team-a"]'},
            "project 'team-b' is not in raindropProjects",
        ),
    ],
)
def test_bad_settings_name_the_key(context: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        config_from_context(context_with(context))


def test_the_intake_dead_letter_queue_outlives_the_stack_with_its_tls_only_policy(
    intake_template: assertions.Template,
) -> None:
    # Records there wait for an operator's redrive, like the forwarder's own dead letters.
    queues = resources(intake_template, "AWS::SQS::Queue")
    policies = resources(intake_template, "AWS::SQS::QueuePolicy")
    retained = {
        logical_id
        for logical_id, queue in queues.items()
        if queue.get("DeletionPolicy") == "Retain"
    }
    # The forwarder's dead-letter queue and the intake's.
    assert len(retained) == 2
    for logical_id in retained:
        guarding = [
            policy
            for policy in policies.values()
            if logical_id in {_ref(queue) for queue in policy["Properties"]["Queues"]}
        ]
        assert guarding
        for policy in guarding:
            assert policy["DeletionPolicy"] == "Retain"


def test_intake_projects_in_the_allow_list_synthesise() -> None:
    config = config_from_context(
        context_with({"segmentEventSource": f"{SOURCE}=team-a", "raindropProjects": '["team-a"]'})
    )
    assert config.event_sources == {SOURCE: "team-a"}
