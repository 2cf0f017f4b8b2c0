"""DIRAC's user API: ``Job`` describes a job, ``Dirac`` submits and follows it."""
