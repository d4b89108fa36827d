"""The citizen's pages (SPEC §7): ``/r/{token}`` opened from an invitation, and its QR code."""
