"""Services of the ``Mine`` System: one ``<Service>Handler`` module per service."""
