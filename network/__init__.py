"""Operator tooling for a real Fabric network of province and city centres."""
