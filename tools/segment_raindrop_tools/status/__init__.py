"""``segment-raindrop status``: is the deployment (or local mode) healthy?

One module per job: :mod:`.target` (where to look: stack outputs or local mode's state file),
:mod:`.secret`, :mod:`.queues`, :mod:`.alarms`, :mod:`.metrics` and :mod:`.ping` (one check
each), :mod:`.inspect` (all of them), :mod:`.report` (the result and what needs attention),
:mod:`.render` (the summary). The command is :mod:`segment_raindrop_tools.cli_status`.
"""
