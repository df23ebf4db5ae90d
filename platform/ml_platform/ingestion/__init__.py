"""Turns source specs into raw and clean assets, their checks and their landing sensors."""
