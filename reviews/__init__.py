"""The review domain: documents, members, comments, suggestions, discussions."""
