"""Analytic predictions the simulation is validated against: the NBD-Dirichlet and Erlang C / A queues."""
