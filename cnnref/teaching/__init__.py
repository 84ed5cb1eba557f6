"""Teaching-only code: what the book needs to show, not what a network needs to run.

- :mod:`~cnnref.teaching.sourceforms`: the five sources' equations exactly as printed, mistakes
  included, so that the book can check each against ``cnnref``.
- :mod:`~cnnref.teaching.matlab_net`: source 004's MATLAB-style network (``convn``/``flipall``
  form, maps as lists, column-major flatten).
- :mod:`~cnnref.teaching.bug_gallery`: deliberately wrong backward passes, one classic mistake each,
  for the gradient checks to catch.
- :mod:`~cnnref.teaching.figures`: the book's figures, drawn from ``cnnref`` results.
"""
