"""Cooperative-coroutine runtime: threads, scheduling points, primitives, choices and strategies."""
