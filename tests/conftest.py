"""Settings shared by the whole suite.

Hypothesis runs without a per-example deadline: property tests share a 2-core machine with other suites,
and a slow example on a loaded box is not a failure of the property.
"""

from hypothesis import settings

settings.register_profile("aicf", deadline=None, print_blob=True)
settings.load_profile("aicf")
