"""I/O adapters, one module per outside system."""
