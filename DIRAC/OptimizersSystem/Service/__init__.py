"""Services of the Optimizers System."""
