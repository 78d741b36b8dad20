"""The fixture project's own application package, which some revisions import."""
