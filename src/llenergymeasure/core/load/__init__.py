"""Serving load: arrival schedules, the load runner, steady windows, goodput, attribution.

Every module here is engine-independent: an engine plugs in through the runner's
`submit` and the per-step records it keeps (`domain/load.py`).
"""
