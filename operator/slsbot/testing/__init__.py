"""Helpers shared by the tests and the benchmarks; they need the development dependencies (kmock). Nothing that
ships imports them (``.importlinter``)."""
