"""AWS CDK app for segment-raindrop: one stack of small constructs (see docs/deploy.md)."""
