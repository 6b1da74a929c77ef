"""Local mode and the local stand-ins the tests and benchmarks share; never used in Lambda.

- AWS: :mod:`.moto` (the server), :mod:`.aws` (the forwarder's resources in it and clients to
  them), :mod:`.queues` (draining, peeking, counting).
- Raindrop: :mod:`.receiver` (the HTTP stand-in), :mod:`.raindrop_api` (how it answers),
  :mod:`.raindrop_items` (what items Raindrop accepts), :mod:`.faults`, :mod:`.recording`.
- Lambda's plumbing: :mod:`.apigw` (API Gateway events and answers), :mod:`.event_source`
  (Lambda's SQS event source).
- Local mode itself: :mod:`.mode` (start/stop and wiring), :mod:`.front` (the webhook over
  HTTP), :mod:`.console` (what it prints), :mod:`.state` (the files it leaves for the operator),
  :mod:`.options`.
"""
