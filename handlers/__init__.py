"""The team's handlers: each module here is one use case, served at /webservice/<module name>."""
