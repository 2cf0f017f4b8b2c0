"""The ``Mine`` System of the ``myext`` extension."""
