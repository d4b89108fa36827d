"""The application register (办件, SPEC §7): the approval system's upsert, staff's view."""
