"""The pure core: no I/O, no asyncio, no adapters. Everything here is sync functions over frozen data."""
