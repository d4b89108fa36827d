"""Ratings: the intake API for devices and the read API for staff."""
