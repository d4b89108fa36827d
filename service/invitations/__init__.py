"""Invitations to rate (SPEC §7): made when an application reaches a rated stage, sent by
SMS through the notification outbox, opened at ``/r/{token}``."""
