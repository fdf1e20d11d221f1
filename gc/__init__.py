"""Garbage collection and housekeeping, online.

`mark`: the live set as a pure function of a log position P. `sweep`: the plan (which stored
blobs go, and why) and the fenced per-blob deletion. `collector`: one run, recorded as a
`GcRun`. `schedule`: the timer jobs of a serving process (GC on the recorded cron schedule,
the upload purge). `upload_purge`: abandoned upload sessions.
"""
