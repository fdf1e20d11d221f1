"""Garbage collection: mark the blobs no live manifest references by replaying the log up to a
position, then sweep them from storage (with a grace period for racing uploads).

Not built yet: deletes are recorded as events (`Manifest.Deleted`, `Tag.Deleted`,
`BlobLink.Unlinked`) and the bytes stay in storage until this package lands.
"""
