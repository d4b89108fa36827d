"""Integration clients (SPEC §7): registering them and their own ``/api/v1/clients`` view."""
