"""Ahead-of-time compilation: topologies and what a compiled program costs."""
