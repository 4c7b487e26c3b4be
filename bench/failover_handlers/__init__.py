"""The handler `make failover` calls: work that takes 2 s in a worker, each execution written to a file."""
