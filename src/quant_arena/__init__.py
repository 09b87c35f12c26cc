"""Quant Arena
"""

__version__ = "0.1"
