"""hcp configuration: every setting comes from an ``HCP_*`` environment variable."""
from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
