"""CRM warehouse for brand communities: sources, loader, transforms and checks."""

__version__ = "0.1.0"
