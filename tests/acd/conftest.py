"""Hypothesis profiles of the ACD property tests.

``ci`` (the default) runs thousands of examples; ``HYPOTHESIS_PROFILE=dev`` a quick pass.
No example database: runs leave nothing behind in the working tree."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=1500, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=150, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
