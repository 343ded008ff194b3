"""ipywidgets views for the course."""
