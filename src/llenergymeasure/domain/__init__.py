"""Pydantic models shared by every layer; this package imports nothing else of llem."""
