"""Saleswire's own common code: settings, message contracts, broker and database wiring, logging, metrics."""
