"""Orchestration of the HHD evidence synthesis: data and config validation, fitting, checks, outputs."""
