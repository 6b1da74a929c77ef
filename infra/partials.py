"""The table where the mirror merges Raindrop's partial events until the interaction finishes.

`events/track_partial` sends one interaction in pieces (`begin`, updates, `finish`); Segment
gets one `track` with every merged field once `is_pending` is false. Items live only while
an interaction is open: the mirror deletes an item when it emits the `track`, and the TTL
attribute `expires_at` removes interactions never finished (docs/wire.md §4).
"""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.config import StackConfig
from infra.retention import data_removal_policy, pin_logical_id

PARTITION_KEY: Final = "event_id"
TTL_ATTRIBUTE: Final = "expires_at"
# Pinned from the start (infra/retention.py): a renamed or moved construct must not replace
# the table and lose the interactions still open. Never change it on a deployed stack.
PARTIALS_TABLE_LOGICAL_ID: Final = "MirrorPartialsTable"

_PITR_REASON: Final = (
    "The table holds only the AI conversations of interactions still open (minutes), deleted "
    "when they finish or by TTL. Point-in-time recovery would keep copies of that prompt and "
    "output text for up to 35 days after the forwarder deleted it, and restoring it could "
    "only re-create Segment copies of unfinished interactions: Raindrop received every "
    "partial event directly, so losing the table loses nothing of Raindrop's."
)


class PartialsTable(Construct):
    """Exposes `table` (dynamodb.Table) for the mirror function's environment and grants."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            # Traffic follows the apps' AI calls: spiky, often idle; no capacity to plan.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            # Encrypted at rest with the AWS owned key (DynamoDB's default, no KMS charges).
            # Open interactions are events not yet in Segment: kept like the dead-letter queue.
            removal_policy=data_removal_policy(config),
        )
        pin_logical_id(self.table, PARTIALS_TABLE_LOGICAL_ID)
        cdk.Validations.of(self.table).acknowledge(
            cdk.Acknowledgment(id="AwsSolutions-DDB3", reason=_PITR_REASON)
        )
