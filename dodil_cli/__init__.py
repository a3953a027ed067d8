"""dodil: the command line of the dodil platform (Ignite compute)."""

__version__ = "0.1.0"
