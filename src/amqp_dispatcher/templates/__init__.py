"""Jinja2 templates of the generated service package, shipped as package data.

The templates only lay out rows that the render stage prepared; they hold no logic.
"""
