"""Tesseract through tesserocr (``engine="tesseract"``): everything that loads
libtesseract lives here, and only ``start()`` imports ``tesserocr``."""
