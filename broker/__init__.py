"""What both sides share: settings, connections, topology names, the msgpack codec,
and DIRAC's return values and error codes."""
