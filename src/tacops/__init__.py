"""tacops: backup, restore and restore drills for the TousAntiCovid CT back end."""

__version__ = "0.1.0"
