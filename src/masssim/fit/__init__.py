"""``masssim fit``: scenario tables estimated from a user's own data.

* :mod:`masssim.fit.market`: the NBD-Dirichlet's M, K, S and brand shares from a purchase panel;
* :mod:`masssim.fit.channels`: each channel's delivery, open, click, unsubscribe and reply rates from a
  campaign log;
* :mod:`masssim.fit.table`: reading the user's CSV file, with the project's one-line errors.

The method, assumptions and limits are in docs/model.md ("Fitting to your own data").
"""
