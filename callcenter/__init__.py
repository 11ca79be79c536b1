"""Composition of the domain packages into a node: settings, database, HTTP API, CLI."""
