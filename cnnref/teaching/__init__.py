"""Teaching-only code: what the book needs to show, not what a network needs to run.

- :mod:`~cnnref.teaching.sourceforms`: the five sources' equations exactly as printed, mistakes
  included, so that the book can check each against ``cnnref``.
- :mod:`~cnnref.teaching.matlab_net`: source 004's MATLAB-style network (``convn``/``flipall``
  form, maps as lists, column-major flatten).
- :mod:`~cnnref.teaching.bug_gallery`: deliberately wrong backward passes, one classic mistake each,
  for the gradient checks to catch.
- :mod:`~cnnref.teaching.figures`: the figures of Part I (windows, flips, borders, coverage),
  drawn from ``cnnref`` results, and the grid drawing the other figure modules share.
- one figure module a topic, each drawn from ``cnnref`` results:
  :mod:`~cnnref.teaching.figures_locality` (banded shared matrix, receptive fields),
  :mod:`~cnnref.teaching.figures_layers` (the layer's tensors, zero insertion, pooling routes),
  :mod:`~cnnref.teaching.figures_weight_grad` (the input read through the deltas),
  :mod:`~cnnref.teaching.figures_deltas` (the full convolution with the flipped kernel),
  :mod:`~cnnref.teaching.figures_matrix` (the layer's matrix and its transpose, im2col/col2im),
  :mod:`~cnnref.teaching.figures_network` (the gradient flow through a whole network).
"""
