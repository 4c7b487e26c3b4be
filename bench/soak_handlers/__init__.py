"""The handlers `make soak` calls: fast, slow, inline, failing; each notes every execution."""
