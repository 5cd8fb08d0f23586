"""The model of the market and its customers: population, every brand's buying, creatives, channels, the mention
stream, shift schedules, the metric registry and the seed tree. Draws take a generator; nothing here runs a simulation.
"""
