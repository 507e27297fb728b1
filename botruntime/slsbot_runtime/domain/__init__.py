"""Plain data types and the one exception tree of the runtime. No I/O."""
