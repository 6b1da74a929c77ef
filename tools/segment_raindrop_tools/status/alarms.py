"""Which of the stack's alarms are in ALARM (CloudWatch DescribeAlarms).

The stack names every alarm ``segment-raindrop-<stage>-<Name>`` with a hyphen-free ``Name``
(infra/monitoring.py), so the prefix also matches a longer stage's alarms (``prod-eu`` for
``prod``); those are told apart by a hyphen after the prefix and left out.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from segment_raindrop_tools.status.report import AlarmsState, FiringAlarm

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

__all__ = ["alarm_prefix", "alarms_state"]


def alarm_prefix(stack: str) -> str:
    """The alarms of stack ``segment-raindrop-<stage>`` are named ``segment-raindrop-<stage>-*``."""
    return f"{stack}-"


def alarms_state(client: CloudWatchClient, prefix: str) -> AlarmsState:
    try:
        alarms = [
            alarm
            for page in client.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix)
            for alarm in page.get("MetricAlarms", [])
            if "-" not in alarm.get("AlarmName", "").removeprefix(prefix)
        ]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        return AlarmsState(available=True, prefix=prefix, error=f"{code} from CloudWatch")
    except BotoCoreError as exc:
        return AlarmsState(available=True, prefix=prefix, error=type(exc).__name__)
    firing = tuple(
        FiringAlarm(
            name=alarm.get("AlarmName", ""),
            since=(when.astimezone(UTC) if (when := alarm.get("StateUpdatedTimestamp")) else None),
            reason=alarm.get("StateReason", ""),
        )
        for alarm in sorted(alarms, key=lambda alarm: alarm.get("AlarmName", ""))
        if alarm.get("StateValue") == "ALARM"
    )
    return AlarmsState(available=True, prefix=prefix, total=len(alarms), in_alarm=firing)
