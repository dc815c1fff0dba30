"""Command-line tools run by people, not by the services: each talks to the system only through
`shared/` contracts, HTTP or the broker, never through a service's own code."""
