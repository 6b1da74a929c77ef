"""The forwarder's secret: Raindrop write key, webhook token and optional Segment shared secret.

By default the stack creates it with a generated `webhook_token` and the placeholder
`raindrop_api_key: REPLACE_ME` (the functions answer "not configured" until it is replaced, see
docs/deploy.md). With `secretName` or `secretArn` in the context an existing secret is used.
"""

from __future__ import annotations

import json
import re
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import StackConfig
from infra.retention import data_removal_policy, pin_logical_id

PLACEHOLDER_API_KEY: Final = "REPLACE_ME"
# The id CloudFormation has always known the created secret by (infra/retention.py). Never
# change it: a new id is a new secret, with a new token and the placeholder key.
SECRET_LOGICAL_ID: Final = "SecretA29EB826"  # noqa: S105 - a CloudFormation id, not a password
# How the secret's value was generated. CloudFormation generates a new value whenever this
# changes, which would replace the Raindrop key set by hand with the placeholder and rotate the
# token Segment sends (every request then 401, which Segment drops). Never change it on a
# deployed stack; tests/infra/test_infra_retention.py holds it fixed.
_GENERATOR: Final = secretsmanager.SecretStringGenerator(
    secret_string_template=json.dumps({"raindrop_api_key": PLACEHOLDER_API_KEY}),
    generate_string_key="webhook_token",
    # The token travels in an HTTP header and gets pasted into Segment's UI.
    exclude_punctuation=True,
    password_length=48,
)
# A complete secret ARN ends in "-" and the 6 random characters Secrets Manager appends.
_COMPLETE_ARN = re.compile(r"-[A-Za-z0-9]{6}$")


class ForwarderSecret(Construct):
    """Exposes `secret` (for grants) and `secret_id` (the value of RAINDROP_SECRET_ID)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self.secret: secretsmanager.ISecret
        if config.secret_arn:
            self.secret = self._import_arn(config.secret_arn)
            self.secret_id = config.secret_arn
        elif config.secret_name:
            self.secret = secretsmanager.Secret.from_secret_name_v2(
                self, "Imported", config.secret_name
            )
            self.secret_id = config.secret_name
        else:
            self.secret = self._create(config)
            self.secret_id = self.secret.secret_arn

    def _import_arn(self, arn: str) -> secretsmanager.ISecret:
        # A complete ARN lets the grants name the secret exactly; a partial one needs "-??????".
        if _COMPLETE_ARN.search(arn):
            return secretsmanager.Secret.from_secret_complete_arn(self, "Imported", arn)
        return secretsmanager.Secret.from_secret_partial_arn(self, "Imported", arn)

    def _create(self, config: StackConfig) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "Secret",
            description="segment-raindrop: Raindrop write key, Segment webhook token",
            generate_secret_string=_GENERATOR,
            # The key was set by hand and Segment holds the token: kept unless retainData is
            # false (CloudFormation would delete it at once, without a recovery window).
            removal_policy=data_removal_policy(config),
        )
        pin_logical_id(secret, SECRET_LOGICAL_ID)
        cdk.Validations.of(secret).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason=(
                    "Both values are credentials of other systems: the Raindrop key is issued by "
                    "Raindrop and the webhook token must change in Segment's destination settings "
                    "at the same moment, so rotation is a manual, documented procedure "
                    "(docs/deploy.md) rather than a rotation Lambda."
                ),
            )
        )
        return secret
