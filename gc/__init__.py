"""Garbage collection and housekeeping.

`schedule`: the jobs each serving process runs on a timer — today the purge of abandoned
upload sessions (`commands.uploads.UploadSessions.purge`).

Not built yet: the GC proper, which marks the blobs no live manifest references by replaying
the log up to a position, then sweeps them from storage (with a grace period for racing
uploads). Until it lands, deletes are recorded as events (`Manifest.Deleted`, `Tag.Deleted`,
`BlobLink.Unlinked`) and the bytes stay in storage.
"""
