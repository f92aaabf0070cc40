"""The kgfusion version, recorded in every workspace manifest (a leaf module: no imports)."""

__version__ = "0.1.0"
