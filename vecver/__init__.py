"""vecver: versioned embedding spaces for vector databases."""
__version__ = "0.1.0"
