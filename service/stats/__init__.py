"""Managers' figures: exact rollups, summary/breakdown/export API, dashboard and the satisfaction floor."""
