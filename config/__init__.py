"""hcp configuration: every setting comes from an ``HCP_*`` environment variable."""
from config.settings import ProcessSettings, Settings, load_settings, process_settings

__all__ = ["ProcessSettings", "Settings", "load_settings", "process_settings"]
