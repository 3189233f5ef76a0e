"""Text cleaning: Unicode, control characters, whitespace and boilerplate lines, over Arrow batches."""
