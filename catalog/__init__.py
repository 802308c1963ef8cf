"""The catalog: a mirror of the Feast registry, plus governance on top of it."""
