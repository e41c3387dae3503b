"""The ground floor: PyMC models and exact mathematics, pure functions of data and priors.

No file I/O, plotting or configuration here. Import the modules themselves (`models.families`,
`models.beta_binomial`, ...); this package imports nothing, so that a light module (`models.priors`,
`models.mixtures`, `models.design`) never pulls in PyMC.
"""
