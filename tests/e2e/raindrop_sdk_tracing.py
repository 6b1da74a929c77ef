"""Raindrop's Python SDK with tracing on, pointed at an endpoint: run as its own process by
tests/e2e/test_mirror_tracing.py, since the SDK's trace pipeline is process-global.

argv: the SDK endpoint, the API key. It records one interaction with a task span and a manual
tool span, flushes, shuts down, and prints the interaction's event id.
"""

from __future__ import annotations

import sys

import raindrop.analytics as raindrop


def main(endpoint: str, api_key: str) -> None:
    raindrop.init(api_key=api_key, endpoint=endpoint, local_workshop_url=None, tracing_enabled=True)

    @raindrop.task(name="look_up_docs")
    def look_up_docs(query: str) -> str:
        return f"docs for {query}"

    interaction = raindrop.begin(
        user_id="user-traced",
        event="ai_interaction",
        event_id="traced-interaction-1",
        input="how do I rotate my key?",
        model="gpt-test",
    )
    look_up_docs("rotate key")
    span = interaction.start_span("tool", "search_kb")
    span.record_input({"q": "rotate key"})
    span.record_output({"hits": 2})
    span.end()
    interaction.finish(output="Open Settings, then API keys.")
    raindrop.flush()
    raindrop.shutdown()
    print(interaction.id)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
