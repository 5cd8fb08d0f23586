"""Targeting policies: the contracts (:mod:`masssim.policies.base`), the name registry and the built-ins.

Importing the package imports the built-in modules, whose ``@register_targeting`` decorators register them:
the registry itself imports no plug-in.
"""

from masssim.policies import bandits, learning_segments, targeting, uplift  # noqa: F401
