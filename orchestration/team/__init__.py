"""The team profile's shared services on one machine (README: Team profile)."""
