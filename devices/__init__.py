"""Venue capture agents: recorders, check-in stations, signing pads, with store-and-forward queues."""
