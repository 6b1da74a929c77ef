"""What a million events cost at the measured durations (us-east-1 list prices, 2026)."""

from __future__ import annotations

from dataclasses import dataclass

LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1_000_000
API_GATEWAY_REST_REQUEST = 3.50 / 1_000_000
WEBHOOK_MEMORY_GB = 1.0  # the stack's default webhookMemoryMb (1024)


@dataclass(frozen=True)
class CostRow:
    batch_size: int
    seconds_per_batch: float
    gb_seconds_per_million: float
    lambda_dollars_per_million: float
    api_gateway_dollars_per_million: float

    @property
    def total_dollars_per_million(self) -> float:
        return self.lambda_dollars_per_million + self.api_gateway_dollars_per_million


def per_million(batch_size: int, seconds_per_batch: float) -> CostRow:
    invocations = 1_000_000 / batch_size
    # Lambda bills each invocation's duration rounded up to the millisecond.
    billed = max(0.001, round(seconds_per_batch + 0.0005, 3))
    gb_seconds = invocations * billed * WEBHOOK_MEMORY_GB
    return CostRow(
        batch_size=batch_size,
        seconds_per_batch=seconds_per_batch,
        gb_seconds_per_million=gb_seconds,
        lambda_dollars_per_million=gb_seconds * LAMBDA_ARM_GB_SECOND + invocations * LAMBDA_REQUEST,
        api_gateway_dollars_per_million=invocations * API_GATEWAY_REST_REQUEST,
    )
