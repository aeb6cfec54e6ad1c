"""Jinja2 templates of the generated service package, shipped as package data.

The templates only place text that the render stage wrote; they hold no logic.
"""
