"""HTTP: the OCI distribution API (`/v2/`), the token service, and (later) `/api/v0` and the UI."""
