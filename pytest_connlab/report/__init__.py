"""Rendering of observations: the terminal table and the JSON results file."""
