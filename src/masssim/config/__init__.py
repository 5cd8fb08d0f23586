"""Configuration: the scenario schema, its errors, dotted-path overrides, plug-in registry machinery and file formats.

The bottom layer: data only, importing nothing else of masssim.
"""
