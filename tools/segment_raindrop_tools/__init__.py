"""Operator and developer tooling for segment-raindrop: the ``segment-raindrop`` console script,
local mode, sample traffic. Never shipped to Lambda: the bundle holds ``segment_raindrop`` only.
"""
