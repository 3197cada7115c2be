"""HTTP only: routing, auth, microversions, validation, error bodies."""
