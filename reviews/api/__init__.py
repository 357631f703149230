"""The REST API (spec §1-3), built with Django REST framework."""
