"""Server-rendered pages in Simplified Chinese for staff, and the hall tablet page."""
