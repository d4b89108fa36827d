"""Devices after they are made (``service.org.add_device``): enabling, new keys, tablet
pairing codes, and their health (last seen, silent in working hours)."""
