"""The trust kernel of bidtrace: what a court installs to check evidence offline.

It imports nothing from the rest of the project. Every other package calls it to check what it produces.
"""
