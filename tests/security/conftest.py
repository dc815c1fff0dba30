"""The security tests run against the e2e session stack."""

from tests.e2e.conftest import stack  # noqa: F401 - the session fixture, re-exported
