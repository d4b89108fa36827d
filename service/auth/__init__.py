"""Who is calling: device keys, staff tokens and web sessions, and the scope they grant."""
