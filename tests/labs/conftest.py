"""Fixtures the labs' tests share: each lab's nbgrader round trip, run once for the session."""

import pytest

from tests.labs.harness import RoundTrips


@pytest.fixture(scope="session")
def round_trips(tmp_path_factory):
    trips = RoundTrips(tmp_path_factory.mktemp("round-trips"))
    yield trips
    trips.close()


@pytest.fixture
def graded(request, round_trips):
    """The round trip of the lab of this test's module (its ``CASE``), graded once per session."""
    return round_trips.of(request.module.CASE)
