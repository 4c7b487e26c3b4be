"""The RQ side of Flowhook: the job that runs a handler, and the worker entry point."""
