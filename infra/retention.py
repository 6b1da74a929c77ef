"""What survives `cdk destroy` and a replacement: the data an operator cannot recreate.

Two resources hold such data: the created secret (the Raindrop key someone set by hand, and
the webhook token Segment is configured with) and the dead-letter queue (events not replayed
yet). Both are kept on delete and on replacement unless `retainData` is false, and their
logical ids are pinned: CloudFormation replaces a resource whose logical id changes, and CDK
derives that id from the construct path, so moving or renaming a construct would otherwise
create an empty queue or a secret with a new token and the placeholder key.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from infra.config import StackConfig


def data_removal_policy(config: StackConfig) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.DESTROY


def pin_logical_id(construct: IConstruct, logical_id: str) -> None:
    """Fix the CloudFormation logical id of `construct`'s resource to `logical_id`."""
    resource = construct.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    resource.override_logical_id(logical_id)
