"""Cases: routing of bad ratings, working-day deadlines, the workflow and its API."""
